"""The GCP access scan: everyone who can read each secret's value, and through which grant.

A principal reads a secret's value with ``secretmanager.versions.access``, granted by any
role that carries it, bound on the secret itself or on any resource above it. The scan
reads, per target:

- each secret's own IAM policy: already read by :meth:`GcpProvider.read` (``via=secret``),
  directly or, where the asset index shows no binding, taken as empty from the index; no
  call here, so the scan adds no call per secret;
- the project's IAM policy: ``Projects.GetIamPolicy``, one call (``via=project``);
- with ``access_scan: {ancestors: ...}``: the folders' and the organization's policies
  (``via=folder`` / ``organization``), one ``GetIamPolicy`` each, found with
  ``Projects.GetProject`` and ``Folders.GetFolder`` or named by the target;
- the roles bound anywhere that are not known without asking: ``IAM.GetRole``, once per
  distinct role (:mod:`.roles`).

Policies are read as version 3 so conditional bindings come back with their conditions;
such readers are listed with ``conditional=True`` (the condition is not evaluated). A
source that cannot be read (permission denied, an outage, ``access_scan: false``) is never
taken for "no readers": the scan says which source is missing and why, for the whole
target or for one secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from google.iam.v1 import iam_policy_pb2, options_pb2

from cloudsync.providers.access import AccessScan, EffectiveReader, Via
from cloudsync.providers.base import ProviderError, RemoteSecret, is_reserved
from cloudsync.providers.gcp.calls import Caller
from cloudsync.providers.gcp.mapping import PolicyView, snapshot_of
from cloudsync.providers.gcp.roles import Definition, RoleBook, definition_of, split_role
from cloudsync.providers.gcp.rules import MAX_ANCESTORS, GcpAccessScan, GcpTarget
from cloudsync.providers.gcp.scan_clients import ScanClients

OPTED_OUT = "access_scan is false for this target: grants beyond each secret's own policy were not read"
NOT_READ = "the secret's own IAM policy was not read (not owned by this stack and not asked for)"
_MAX_CONDITION = 80  # characters of a condition's title or expression shown in a grant
_GET_POLICY = {Via.PROJECT: ("Projects.GetIamPolicy", "projects"), Via.FOLDER: ("Folders.GetIamPolicy", "folders"),
               Via.ORGANIZATION: ("Organizations.GetIamPolicy", "organizations")}


@dataclass(frozen=True)
class Source:
    """One IAM policy that grants access to every secret below ``scope``."""

    via: Via
    scope: str
    policy: PolicyView


class AccessScanner:
    """Runs the scan of one target; a new :class:`RoleBook` per scan, so roles are looked up afresh."""

    def __init__(self, config: GcpTarget, caller: Caller, clients: ScanClients, parent: str) -> None:
        self.config = config
        self.caller = caller
        self.clients = clients
        self.parent = parent  # projects/P[/locations/L]: where the secrets' names live
        self.project = f"projects/{config.project}"

    def scan(self, secrets: Sequence[RemoteSecret]) -> AccessScan:
        # cloudsync's own secrets (fingerprint key, apply lock) are no one's secrets to report.
        live = [s for s in secrets if not s.deleted and not is_reserved(s.name)]
        settings = self.config.access_scan
        if settings is False:
            # No IAM call at all: the secrets' own policies, with the roles known without asking.
            readers, secret_reasons = self._per_secret(live, RoleBook(None), ())
            return AccessScan(readers=readers, reasons=(OPTED_OUT,), secret_reasons=secret_reasons)
        reasons: list[str] = []
        sources = self._sources(settings, reasons)
        book = RoleBook(self._lookup)
        book.learn(b.role for source in sources for b in source.policy.bindings)
        broad: list[EffectiveReader] = []
        for source in sources:
            found, unknown = _readers(source.policy, source.via, source.scope, book)
            broad += found
            reasons += unknown
        readers, secret_reasons = self._per_secret(live, book, tuple(sorted(set(broad))))
        return AccessScan(readers=readers, reasons=tuple(dict.fromkeys(reasons)), secret_reasons=secret_reasons)

    # -- sources ----------------------------------------------------------------------

    def _sources(self, settings: bool | GcpAccessScan, reasons: list[str]) -> list[Source]:
        scopes = [(Via.PROJECT, self.project)]
        if isinstance(settings, GcpAccessScan):
            scopes += [(_via_of(name), name) for name in self._ancestors(settings.ancestors, reasons)]
        sources = []
        for via, scope in scopes:
            try:
                sources.append(Source(via, scope, self._policy(via, scope)))
            except ProviderError as exc:
                reasons.append(f"the IAM policy of {scope} could not be read: {exc.message}")
        return sources

    def _policy(self, via: Via, scope: str) -> PolicyView:
        method, kind = _GET_POLICY[via]
        client = self.clients.client(kind)
        request = iam_policy_pb2.GetIamPolicyRequest(
            resource=scope, options=options_pb2.GetPolicyOptions(requested_policy_version=3))
        return PolicyView.from_pb(self.caller(method, client.get_iam_policy, request, resource=scope))

    def _ancestors(self, ancestors: bool | list[str], reasons: list[str]) -> list[str]:
        """The folders (nearest first) and the organization above the project."""
        if not isinstance(ancestors, bool):
            return list(ancestors)
        if not ancestors:
            return []
        found: list[str] = []
        try:
            resourcemanager = self.clients.types("projects")
            project = self.caller("Projects.GetProject", self.clients.client("projects").get_project,
                                  resourcemanager.GetProjectRequest(name=self.project), resource=self.project)
            parent = str(project.parent)
            while parent.startswith("folders/") and len(found) < MAX_ANCESTORS:
                found.append(parent)
                folder = self.caller("Folders.GetFolder", self.clients.client("folders").get_folder,
                                     resourcemanager.GetFolderRequest(name=parent), resource=parent)
                parent = str(folder.parent)
            if parent.startswith("organizations/"):
                found.append(parent)
            elif parent.startswith("folders/"):
                reasons.append(f"more than {MAX_ANCESTORS} folders above {self.project}: stopped at {parent}")
        except ProviderError as exc:
            reasons.append(f"the folders and organization above {self.project} could not all be found: {exc.message}")
        return found

    def _lookup(self, role: str) -> Definition:
        try:
            iam = self.clients.types("iam")
            found = self.caller("IAM.GetRole", self.clients.client("iam").get_role, iam.GetRoleRequest(name=role),
                                resource=role)
        except ProviderError as exc:
            if exc.code == "NOT_FOUND":
                return Definition(False)  # a binding to a role that no longer exists grants nothing
            return Definition(None, f"role {role} could not be read: {exc.message}")
        disabled = found.stage == iam.Role.RoleLaunchStage.DISABLED
        return definition_of(found.included_permissions, disabled=disabled, deleted=bool(found.deleted))

    # -- per secret -------------------------------------------------------------------

    def _per_secret(self, secrets: Iterable[RemoteSecret], book: RoleBook, broad: tuple[EffectiveReader, ...],
                    ) -> tuple[dict[str, tuple[EffectiveReader, ...]], dict[str, tuple[str, ...]]]:
        readers: dict[str, tuple[EffectiveReader, ...]] = {}
        secret_reasons: dict[str, tuple[str, ...]] = {}
        for secret in secrets:
            snap = snapshot_of(secret)
            policy = snap.policy if snap is not None else None
            if policy is None:
                readers[secret.name] = broad
                secret_reasons[secret.name] = (NOT_READ,)
                continue
            own, unknown = _readers(policy, Via.SECRET, f"{self.parent}/secrets/{secret.name}", book)
            readers[secret.name] = tuple(sorted({*own, *broad})) if own else broad
            if unknown:
                secret_reasons[secret.name] = tuple(unknown)
        return readers, secret_reasons


def _readers(policy: PolicyView, via: Via, scope: str, book: RoleBook) -> tuple[list[EffectiveReader], list[str]]:
    """The readers one policy grants, and why some of its bindings could not be judged."""
    found: list[EffectiveReader] = []
    unknown: list[str] = []
    for binding in policy.bindings:
        definition = book.definition(binding.role)
        if definition.grants is None:
            unknown.append(f"{definition.reason or f'role {binding.role} is unknown'} "
                           f"(bound at {scope}; whether its members can read is unknown)")
            continue
        if not definition.grants:
            continue
        grant, conditional = _grant(binding.role, binding.condition)
        found += [EffectiveReader(member, via, scope, grant, conditional)
                  for member in binding.members if member and not member.startswith("deleted:")]
    return found, unknown


def _grant(role: str, condition: tuple[str, str, str] | None) -> tuple[str, bool]:
    base, hidden = split_role(role)
    if condition is not None:
        label = "".join(c if c.isprintable() else "?" for c in condition[1] or condition[0])
        if len(label) > _MAX_CONDITION:
            label = label[:_MAX_CONDITION - 1] + "…"
        return f"{base} (condition: {label})", True
    if hidden:
        return f"{base} (condition not shown: the policy was read as version 1)", True
    return base, False


def _via_of(name: str) -> Via:
    return Via.FOLDER if name.startswith("folders/") else Via.ORGANIZATION

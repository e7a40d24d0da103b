"""Who can read each secret of an Azure vault: role assignments at every scope, and access policies.

Calls per target, however many secrets it holds:

- role assignments: none. *Role Assignments - List For Scope* at the vault's scope without
  ``$filter`` returns assignments at the vault, below it (per secret) and inherited from
  above (resource group, subscription, management groups); the target's read already made
  that paginated call, and the scan reuses its listing (:attr:`StateReader.assignments`);
- one ``GET`` of the vault resource (``azure-mgmt-keyvault``, *Vaults - Get*): its
  permission model (``enableRbacAuthorization``) and access policies;
- on the RBAC model, one *Role Definitions - Get* per distinct role among the assignments
  that reach a scanned secret, at the vault's scope (so ``roleDefinitions/read`` granted at
  the vault is enough), except Azure's common built-in roles, whose fixed ids and published
  definitions cloudsync carries (:data:`.roles.BUILT_IN`). Every role is judged by its data
  actions (:mod:`.roles`), never by its name.

The vault ``GET`` is skipped when the target's read already showed the vault on the RBAC model:
Key Vault answers a request that a role assignment authorised with the header
``x-ms-keyvault-rbac-assignment-id`` (an access-policy vault has no assignment to name), and on
that model the access policies grant nothing. Without the header the vault is read.

A vault on the access-policy model (``enableRbacAuthorization`` false or absent) ignores
role assignments for data-plane calls: its readers are the access policies granting secret
``get`` (or ``all``), vault-wide, and the scan says so in its notes. Access policies that
name an application (compound identity) apply only through that application: conditional.

Not evaluated (docs/providers/azure.md): deny assignments, PIM-eligible assignments (not
active until activated), Entra group membership (a group is listed as the group), classic
subscription administrators, and who could grant themselves access (Owner, Contributor on
an access-policy vault, User Access Administrator...). A source that cannot be read leaves
the scan incomplete with a reason naming the missing permission; it never raises.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient

from cloudsync.providers.access import AccessScan, EffectiveReader, Via
from cloudsync.providers.azure.client import RbacScope
from cloudsync.providers.azure.errors import PermissionDenied, azure_call
from cloudsync.providers.azure.permissions import NEEDS, SECRETS_USER_ROLE
from cloudsync.providers.azure.rbac import Assignment
from cloudsync.providers.azure.read import AzureFacts
from cloudsync.providers.azure.roles import BUILT_IN, RoleDefinition, role_definition
from cloudsync.providers.base import NotFoundError, ProviderError, RemoteSecret, facts_of

OPTED_OUT = "grants at the vault and above, role definitions and access policies not scanned (access_scan: false)"
NO_SCOPE = ("grants at the vault and above not scanned: the target names no subscription_id and resource_group "
            "(the vault's ARM scope)")
ACCESS_POLICY_NOTE = ("the vault uses access policies (enableRbacAuthorization is false): its access policies "
                      "decide who reads, vault-wide; Azure RBAC role assignments grant no data-plane access here")
MAX_ROLE_LOOKUPS = 200  # distinct roles resolved per scan; past it, the rest is reported unresolved
READ_PERMISSIONS = frozenset({"get", "all"})  # access-policy secret permissions that return a value
GROUP_TYPES = frozenset({"group", "foreigngroup"})
# cloudsync assigns this role itself, by this id: whatever else is unknown, its per-secret
# readers are known.
_OWN_READER_ROLE = BUILT_IN[SECRETS_USER_ROLE]


@dataclass(frozen=True)
class AccessPolicy:
    object_id: str  # lowercase
    secrets: tuple[str, ...]  # secret permissions, lowercase
    application_id: str | None = None  # compound identity: the principal through this application only


@dataclass(frozen=True)
class VaultModel:
    """The vault resource's permission model, as the access scan needs it."""

    rbac: bool  # enableRbacAuthorization; absent means false (the service's default)
    policies: tuple[AccessPolicy, ...] = ()


# --- where an assignment sits ---------------------------------------------------------------


def placement(scope: str, vault_scope: str) -> tuple[Via, str | None] | None:
    """How an assignment at ``scope`` reaches the vault's secrets: (via, casefolded secret name
    for a per-secret one, else None), or None when it grants nothing on secrets."""
    here = "/" + "/".join(part for part in scope.lower().split("/") if part)
    vault = vault_scope.lower()
    if here == vault:
        return Via.VAULT, None
    if here.startswith(vault + "/"):
        rest = here[len(vault) + 1:].split("/")
        # Only <vault>/secrets/<name>: keys and certificates are other objects.
        return (Via.SECRET, rest[1]) if len(rest) == 2 and rest[0] == "secrets" else None
    if here == "/" or here.startswith("/providers/microsoft.management/managementgroups/"):
        return Via.MANAGEMENT_GROUP, None  # "/" is the tenant root; the listing returns only ancestors
    if not vault.startswith(here + "/"):
        return None  # not above the vault (the listing should not return it)
    depth = len(here.split("/")) - 1  # /subscriptions/s = 2, /subscriptions/s/resourcegroups/g = 4
    return {2: (Via.SUBSCRIPTION, None), 4: (Via.RESOURCE_GROUP, None)}.get(depth)


def _grant(role: RoleDefinition, pattern: str, assignment: Assignment) -> str:
    text = f"role {role.name} (data action {pattern}), assignment {assignment.name}"
    if (assignment.principal_type or "").lower() in GROUP_TYPES:
        text += "; a group: each of its members can read (membership not expanded)"
    return text


def _policy_grant(policy: AccessPolicy) -> str | None:
    if READ_PERMISSIONS.isdisjoint(policy.secrets):
        return None  # e.g. list alone: names, never a value
    text = f"access policy, secret permissions {', '.join(sorted(policy.secrets))}"
    if policy.application_id:
        text += f"; only through application {policy.application_id} (compound identity)"
    return text


# --- evaluation (pure) ----------------------------------------------------------------------


def evaluate_access(names: Sequence[str], vault_scope: str, assignments: Iterable[Assignment],
                    roles: Mapping[str, RoleDefinition], vault: VaultModel | None, *,
                    unresolved: Mapping[str, str] | None = None, reasons: Sequence[str] = ()) -> AccessScan:
    """The readers of each secret in ``names`` (remote names as read).

    ``roles`` maps a role GUID to its definition; ``unresolved`` says why a role could not be
    read; ``vault`` None means the permission model is unknown (both models are then
    possible: the role assignments are listed as a lower bound, and ``reasons`` say why).
    """
    unresolved = unresolved or {}
    # Grants at the vault and above reach every secret: kept once, shared by every secret
    # without a grant of its own, so a scan costs O(secrets + assignments), not their product.
    broad: list[EffectiveReader] = []
    own: dict[str, list[EffectiveReader]] = defaultdict(list)
    by_fold = {name.casefold(): name for name in names}
    target_reasons = list(reasons)
    secret_reasons: dict[str, list[str]] = defaultdict(list)
    notes: list[str] = []
    if vault is not None and not vault.rbac:
        notes.append(ACCESS_POLICY_NOTE)
        for policy in vault.policies:
            grant = _policy_grant(policy)
            if grant is not None:
                broad.append(EffectiveReader(policy.object_id, Via.ACCESS_POLICY, vault_scope, grant,
                                             conditional=policy.application_id is not None))
    else:
        for assignment in assignments:
            place = placement(assignment.scope, vault_scope)
            if place is None:
                continue
            via, secret = place
            name = by_fold.get(secret) if secret is not None else None
            if secret is not None and name is None:
                continue  # a secret this scan does not cover
            role = roles.get(assignment.role)
            if role is None:
                why = (f"role {assignment.role} not resolved ({unresolved.get(assignment.role, 'not read')}): "
                       f"assignment {assignment.name} at {assignment.scope} may grant reads")
                (target_reasons if name is None else secret_reasons[name]).append(why)
                if assignment.role != SECRETS_USER_ROLE:
                    continue
                role = _OWN_READER_ROLE
            pattern = role.reads_secrets
            if pattern is None:
                continue
            reader = EffectiveReader(assignment.principal_id, via, assignment.scope, _grant(role, pattern, assignment),
                                     conditional=assignment.condition is not None)
            (broad if name is None else own[name]).append(reader)
    shared = tuple(sorted(dict.fromkeys(broad)))
    return AccessScan(
        readers={name: tuple(sorted(dict.fromkeys([*shared, *own[name]]))) if name in own else shared
                 for name in names},
        reasons=tuple(dict.fromkeys(target_reasons)),
        secret_reasons={name: tuple(dict.fromkeys(why)) for name, why in secret_reasons.items()},
        notes=tuple(notes))


def known_readers(secrets: Iterable[RemoteSecret], scope: RbacScope | None) -> dict[str, tuple[EffectiveReader, ...]]:
    """What is known without another call, for a target that is not scanned: the per-secret
    readers the target's read found (cloudsync's own role, known by its id)."""
    live = [secret for secret in secrets if not secret.deleted]
    if scope is None:  # the read listed no role assignment
        return {secret.name: () for secret in live}
    found = {}
    for secret in live:
        facts = facts_of(secret, AzureFacts)
        found[secret.name] = tuple(sorted(
            EffectiveReader(g.principal_id, Via.SECRET, scope.secret(secret.name),
                            f"role {_OWN_READER_ROLE.name}, assignment {g.assignment_id.rstrip('/').rsplit('/', 1)[-1]}")
            for g in (facts.grants if facts is not None else ())))
    return found


# --- reading --------------------------------------------------------------------------------


def _why(call: str, error: ProviderError) -> str:
    """Why a source is unknown, naming the permission when the call was refused."""
    if isinstance(error, PermissionDenied):
        return f"permission denied: needs {error.action or NEEDS[call].action}"
    return error.message


def vault_model(sdk_vault: Any) -> VaultModel:
    """A :class:`VaultModel` from ``azure-mgmt-keyvault``'s ``Vault``."""
    props = getattr(sdk_vault, "properties", None)
    policies = []
    for entry in list(getattr(props, "access_policies", None) or []):
        permissions = getattr(entry, "permissions", None)
        secrets = tuple(str(getattr(p, "value", p)).lower() for p in getattr(permissions, "secrets", None) or [])
        application = getattr(entry, "application_id", None)
        policies.append(AccessPolicy(str(getattr(entry, "object_id", "")).lower(), secrets,
                                     str(application).lower() if application else None))
    return VaultModel(rbac=getattr(props, "enable_rbac_authorization", None) is True, policies=tuple(policies))


class AccessScanner:
    """Reads what the access scan needs beyond the role-assignment listing: the vault, the roles."""

    def __init__(self, authorization: AuthorizationManagementClient, vaults: KeyVaultManagementClient,
                 scope: RbacScope) -> None:
        self.authorization = authorization
        self.vaults = vaults
        self.scope = scope

    def vault(self) -> tuple[VaultModel | None, str | None]:
        """The vault's permission model, or None and why it is unknown."""
        try:
            with azure_call("get_vault", "for the access scan"):
                found = self.vaults.vaults.get(self.scope.resource_group, self.scope.vault_name)
        except NotFoundError:
            return None, (f"the vault resource {self.scope.vault_scope} was not found (check subscription_id, "
                          "resource_group and vault_name); its permission model and access policies are unknown")
        except ProviderError as exc:
            return None, (f"the vault's permission model and access policies are unknown ({_why('get_vault', exc)}); "
                          "its role assignments are listed as if it used Azure RBAC")
        return vault_model(found), None

    def roles(self, guids: Iterable[str]) -> tuple[dict[str, RoleDefinition], dict[str, str]]:
        """Each role's definition: a built-in one from :data:`BUILT_IN`, any other by one call.
        After a refusal the rest are not asked for: the same permission is missing for all of them."""
        wanted = set(guids)
        resolved = {guid: BUILT_IN[guid] for guid in wanted & BUILT_IN.keys()}
        unresolved: dict[str, str] = {}
        denied: str | None = None
        for count, guid in enumerate(sorted(wanted - BUILT_IN.keys())):
            if denied is not None or count >= MAX_ROLE_LOOKUPS:
                unresolved[guid] = denied or f"more than {MAX_ROLE_LOOKUPS} distinct roles"
                continue
            try:
                with azure_call("get_role_definition", guid):
                    found = self.authorization.role_definitions.get(self.scope.vault_scope, guid)
                resolved[guid] = role_definition(guid, found)
            except ProviderError as exc:
                unresolved[guid] = _why("get_role_definition", exc)
                if isinstance(exc, PermissionDenied):
                    denied = unresolved[guid]
        return resolved, unresolved

    def scan(self, names: Sequence[str], assignments: Sequence[Assignment], *, rbac_seen: bool = False) -> AccessScan:
        """The readers of ``names``: the vault's permission model (read unless ``rbac_seen``: a
        response of the vault already showed RBAC), then the roles of the assignments that reach them."""
        if not names:
            return AccessScan(readers={})
        vault, why = (VaultModel(rbac=True), None) if rbac_seen else self.vault()
        reasons = (why,) if why else ()
        if vault is not None and not vault.rbac:
            return evaluate_access(names, self.scope.vault_scope, (), {}, vault, reasons=reasons)
        folded = {name.casefold() for name in names}
        needed = {a.role for a in assignments
                  if a.role and (place := placement(a.scope, self.scope.vault_scope)) is not None
                  and (place[1] is None or place[1] in folded)}
        roles, unresolved = self.roles(needed)
        return evaluate_access(names, self.scope.vault_scope, assignments, roles, vault, unresolved=unresolved,
                               reasons=reasons)

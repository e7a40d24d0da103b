"""``cloudsync permissions --target T`` for GCP: custom roles, one per operation.

Rendered from :mod:`cloudsync.providers.gcp.catalog`, the same table the adapter's
permission errors use. Reading values (``secretmanager.versions.access``) is kept out of
the plan role: a plan only needs it on the per-stack fingerprint key secret, so the text
shows how to grant it on that one secret.

Every role includes what the access scan (who can read each secret) calls in the project,
unless the target sets ``access_scan: false``; an identity without it still plans, and reports
the readers as unknown. Folder and organization permissions cannot go in a project role, so
with ``access_scan.ancestors`` one more role is printed, for the organization. The same goes
for the Cloud Asset Inventory permissions (``inventory: true``): without them a plan reads
every owned secret directly and says so.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cloudsync.providers.base import Operation, fingerprint_key_name
from cloudsync.providers.gcp.catalog import ANCESTOR_CALLS, LOOKUPS, METHODS, calls_for
from cloudsync.providers.gcp.rules import GcpAccessScan

_TITLES = {
    Operation.PLAN_METADATA: ("planMetadata", "plan --metadata-only, drift and `cloudsync access`; never reads a value"),
    Operation.PLAN: ("plan", "plan with value fingerprints; reads only the fingerprint key's value"),
    Operation.APPLY: ("apply", "create, update and delete secrets, versions and readers"),
}
ACCESS = "secretmanager.versions.access"


def _role_permissions(operation: Operation, calls: Sequence[str]) -> dict[str, list[str]]:
    """permission -> the RPCs of this operation that need it (plan leaves value access out)."""
    found: dict[str, list[str]] = {}
    for method in calls:
        for permission in METHODS[method].permissions:
            if operation is Operation.PLAN and permission == ACCESS:
                continue
            found.setdefault(permission, []).append(method)
    return dict(sorted(found.items()))


def _role_lines(name: str, stack_name: str, purpose: str, create: str, perms: dict[str, list[str]]) -> list[str]:
    width = max(len(p) for p in perms)
    # Quoted: gcloud reads FILE as YAML, and "a: b: c" is not a mapping value.
    lines = ["---", f"# {name}: {purpose}", f"# {create}", f"title: {json.dumps(f'cloudsync {name} ({stack_name})')}",
             f"description: {json.dumps(f'cloudsync {name}: {purpose}')}", "stage: GA", "includedPermissions:"]
    for permission, methods in perms.items():
        why = "; ".join(f"{m}: {METHODS[m].why}" for m in methods)
        lines.append(f"- {permission:<{width}}  # {why}")
    return lines


def _ancestor_lines(target_config: Any, stack_name: str) -> list[str]:
    """With ``access_scan.ancestors``: the role that reads the folders' and the organization's policies."""
    settings = target_config.access_scan
    if settings is False:
        return ["---", "# access_scan is false for this target: no role reads IAM policies, and plans, drift and",
                "# `cloudsync access` report its secrets' readers beyond their own policies as unknown."]
    lines = ["---", "# Custom roles defined in the organization (organizations/O/roles/R) and bound in the project",
             "# or on a secret are read with iam.roles.get granted on the organization."]
    ancestors = settings.ancestors if isinstance(settings, GcpAccessScan) else False
    if ancestors is False or ancestors == []:
        return lines
    calls = [m for m in ANCESTOR_CALLS if ancestors is True or m not in LOOKUPS]
    named = [a for a in ancestors if a.startswith("organizations/")] if isinstance(ancestors, list) else []
    organization = named[0].split("/", 1)[1] if named else "ORGANIZATION_ID"
    lines += _role_lines("access-ancestors", stack_name,
                         "read the IAM policies of the folders and the organization above the project",
                         f"gcloud iam roles create cloudsyncAccessAncestors --organization={organization} --file=FILE",
                         _role_permissions(Operation.PLAN_METADATA, calls))
    lines += ["# Bind it on the organization (or on the topmost folder cloudsync reads) to every identity",
              "# above: folder and organization permissions cannot go in a project role."]
    return lines


def render_permissions(target_config: Any, stack_name: str) -> str:
    project = target_config.project
    key = fingerprint_key_name(stack_name)
    scan = target_config.access_scan is not False
    lines = [
        f"# Least-privilege IAM for cloudsync on project {project} (stack {stack_name}).",
        "# One custom role per operation: save a block to FILE, create the role with the command",
        "# shown above it, then bind the role to the identity that runs that operation.",
    ]
    for operation in (Operation.PLAN_METADATA, Operation.PLAN, Operation.APPLY):
        suffix, purpose = _TITLES[operation]
        lines += _role_lines(operation.value, stack_name, purpose,
                             f"gcloud iam roles create cloudsync{suffix[0].upper()}{suffix[1:]} --project={project} "
                             "--file=FILE",
                             _role_permissions(operation, calls_for(operation, access_scan=scan,
                                                                    inventory=target_config.inventory)))
    lines += _ancestor_lines(target_config, stack_name)
    lines += [
        "---",
        f"# The plan identity also reads the value of one secret, the fingerprint key {key}",
        "# (created by the first apply). Grant that on the secret alone, not project-wide:",
        f"#   gcloud secrets add-iam-policy-binding {key} --project={project} \\",
        "#     --member=PLAN_IDENTITY --role=roles/secretmanager.secretAccessor",
        "# Secrets used as `from` sources need the same grant for the identity that applies.",
        "# Or set CLOUDSYNC_FINGERPRINT_KEY in the pipeline: then plans read no value at all.",
    ]
    return "\n".join(lines)

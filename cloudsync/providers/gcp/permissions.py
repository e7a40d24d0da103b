"""``cloudsync permissions --target T`` for GCP: custom roles, one per operation.

Rendered from :mod:`cloudsync.providers.gcp.catalog`, the same table the adapter's
permission errors use. Reading values (``secretmanager.versions.access``) is kept out of
the plan role: a plan only needs it on the per-stack fingerprint key secret, so the text
shows how to grant it on that one secret.
"""

from __future__ import annotations

import json
from typing import Any

from cloudsync.providers.base import Operation, fingerprint_key_name
from cloudsync.providers.gcp.catalog import CALLS, METHODS

_TITLES = {
    Operation.PLAN_METADATA: ("planMetadata", "plan --metadata-only and drift; never reads a value"),
    Operation.PLAN: ("plan", "plan with value fingerprints; reads only the fingerprint key's value"),
    Operation.APPLY: ("apply", "create, update and delete secrets, versions and readers"),
}
ACCESS = "secretmanager.versions.access"


def _role_permissions(operation: Operation) -> dict[str, list[str]]:
    """permission -> the RPCs of this operation that need it (plan leaves value access out)."""
    found: dict[str, list[str]] = {}
    for method in CALLS[operation]:
        permission = METHODS[method].permission
        if operation is Operation.PLAN and permission == ACCESS:
            continue
        found.setdefault(permission, []).append(method)
    return dict(sorted(found.items()))


def render_permissions(target_config: Any, stack_name: str) -> str:
    project = target_config.project
    key = fingerprint_key_name(stack_name)
    lines = [
        f"# Least-privilege IAM for cloudsync on project {project} (stack {stack_name}).",
        "# One custom role per operation: save a block to FILE, create the role with the command",
        "# shown above it, then bind the role to the identity that runs that operation.",
    ]
    for operation in (Operation.PLAN_METADATA, Operation.PLAN, Operation.APPLY):
        suffix, purpose = _TITLES[operation]
        perms = _role_permissions(operation)
        width = max(len(p) for p in perms)
        lines += ["---", f"# {operation.value}: {purpose}",
                  f"# gcloud iam roles create cloudsync{suffix[0].upper()}{suffix[1:]} --project={project} --file=FILE",
                  # Quoted: gcloud reads FILE as YAML, and "a: b: c" is not a mapping value.
                  f"title: {json.dumps(f'cloudsync {operation.value} ({stack_name})')}",
                  f"description: {json.dumps(f'cloudsync {operation.value}: {purpose}')}",
                  "stage: GA",
                  "includedPermissions:"]
        for permission, methods in perms.items():
            why = "; ".join(f"{m}: {METHODS[m].why}" for m in methods)
            lines.append(f"- {permission:<{width}}  # {why}")
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

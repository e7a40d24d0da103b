"""The registry: one line per provider; rules without SDKs, adapters loaded lazily."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from cloudsync.diagnostics import CloudsyncError
from cloudsync.providers import registry
from cloudsync.providers.base import Provider
from cloudsync.providers.local_rules import LocalTarget

HEAVY = ("boto3", "botocore", "google.cloud.secretmanager", "grpc", "azure.keyvault.secrets", "azure.identity", "cel")


def test_a_missing_sdk_is_a_diagnostic_naming_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "adapter_without_sdk.py").write_text("import sdk_that_is_not_installed_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.ADAPTERS, "aws", registry.ADAPTERS["aws"]._replace(module="adapter_without_sdk"))
    with pytest.raises(CloudsyncError) as info:
        registry.provider_class("aws")
    (diag,) = info.value.diagnostics
    assert "needs sdk_that_is_not_installed_xyz" in diag.message and diag.hint == "pip install 'cloudsync-secrets[aws]'"


def test_help_and_local_runs_import_no_cloud_sdk(tmp_path: Path) -> None:
    (tmp_path / "cloudsync.yaml").write_text(
        "version: 1\nstack: s\ntargets:\n  local: {provider: local}\ndefaults:\n  labels: {owner: o}\n"
        "  rotation: 30d\nsecrets:\n  - {name: a/b, targets: [local], value: {generate: {length: 32}}}\n")
    script = (
        "import sys\n"
        "from cloudsync.cli import app\n"
        f"for args in (['--help'], ['validate', '-C', {str(tmp_path)!r}], ['plan', '-C', {str(tmp_path)!r}]):\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"    loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "    print(args[0], loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=tmp_path)
    lines = [line for line in result.stdout.splitlines() if line.startswith(("--help", "validate", "plan"))]
    # CEL runs in the policy evaluator's own process, never here; no run on the local provider loads a cloud SDK.
    assert lines == ["--help []", "validate []", "plan []"], result.stdout + result.stderr


def test_validating_a_stack_on_every_cloud_imports_no_cloud_sdk(tmp_path: Path) -> None:
    # The core asks each provider's rules (names, principal ids, descriptions), never its adapter.
    (tmp_path / "cloudsync.yaml").write_text(
        "version: 1\nstack: s\ntargets:\n  local: {provider: local}\n  aws: {provider: aws, region: us-east-1}\n"
        "  gcp: {provider: gcp, project: acme-prod}\n  azure: {provider: azure, vault_url: 'https://a.vault.azure.net'}\n"
        "principals:\n  api: {aws: 'arn:aws:iam::123456789012:role/api', gcp: 'serviceAccount:api@acme-prod.iam."
        "gserviceaccount.com', azure: 00000000-0000-0000-0000-000000000001}\n"
        "secrets:\n  - {name: a/b.c, targets: [local, aws, gcp, azure], readers: [api], value: {generate: {}}}\n")
    script = (
        "import sys\n"
        "from cloudsync.cli import app\n"
        "try:\n"
        f"    app(['validate', '-C', {str(tmp_path)!r}])\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code)\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert result.stdout.splitlines()[-2:] == ["exit 0", "[]"], result.stdout + result.stderr


REQUIRED = {"aws": {"region": "us-east-1"}, "gcp": {"project": "acme-prod"},
            "azure": {"vault_url": "https://acme.vault.azure.net"}, "local": {}}


@pytest.mark.parametrize("kind", registry.kinds())
def test_each_registration_names_one_kind_everywhere(kind: str) -> None:
    rules = registry.rules_for(kind)
    assert rules.kind == kind
    assert rules.config_model.model_validate({"provider": kind, **REQUIRED[kind]}).provider == kind
    with pytest.raises(ValidationError):
        rules.config_model.model_validate({"provider": "other", **REQUIRED[kind]})
    assert registry.provider_class(kind).kind == kind


def test_an_unknown_provider_is_a_diagnostic_naming_the_registered_ones() -> None:
    for ask in (registry.rules_for, registry.provider_class):
        with pytest.raises(CloudsyncError) as info:
            ask("awz")
        (diag,) = info.value.diagnostics
        assert (diag.message, diag.hint) == ("no provider 'awz' is registered", "one of aws, gcp, azure, local")


def test_permissions_render_as_json_unless_the_provider_renders_its_own() -> None:
    local = registry.provider_class("local")
    assert local.render_permissions.__func__ is Provider.render_permissions.__func__  # type: ignore[attr-defined]
    shown = json.loads(local.render_permissions(LocalTarget(provider="local"), "shop", "dev"))
    assert shown == {"target": "dev", "provider": "local",
                     "permissions": {op.value: list(needs) for op, needs in local.permissions().items()}}


ZONE_RULES = '''\
"""A provider added by a test: its target model and rules, nothing else."""
import re
from typing import Literal

from pydantic import Field

from cloudsync.providers.rules import ProviderRules, RemoteNames, TargetModel, id_field


class ZoneTarget(TargetModel):
    """A zone of the test cloud."""

    provider: Literal["zone"]
    zone: str = Field(pattern=r"^z[0-9]$")


class ZoneRules(ProviderRules):
    kind = "zone"
    config_model = ZoneTarget
    principal_field = id_field("zone account number", pattern=r"^[0-9]{6}$")
    remote_names = RemoteNames(re.compile(r"[a-z0-9.]{1,20}"), "lowercase letters, digits and '.' (at most 20)",
                               case_insensitive=True)

    def remote_name(self, logical):
        return logical.lower().replace("/", ".")

    def logical_name(self, remote):
        return remote.replace(".", "/")

    def check_description(self, description):
        return None if len(description) <= 10 else "zone keeps 10 characters of description"


RULES = ZoneRules()
'''

ZONE_STACK = """\
version: 1
stack: shop
targets:
  z: {provider: zone, zone: z1}
principals:
  api: {zone: "123456"}
  web: {aws: "arn:aws:iam::123456789012:role/web"}
secrets:
  - {name: shop/Key, targets: [z], readers: [api]}
  - {name: shop/key, targets: [z]}
  - {name: shop/a-very-long-name-indeed, targets: [z]}
  - {name: shop/described, description: more than ten characters, targets: [z]}
  - {name: shop/web, targets: [z], readers: [web]}
"""


def test_a_provider_added_with_one_registry_line_is_understood_by_the_core(tmp_path: Path) -> None:
    (tmp_path / "zone_rules.py").write_text(ZONE_RULES)
    (tmp_path / "stack").mkdir()
    (tmp_path / "stack" / "cloudsync.yaml").write_text(ZONE_STACK)
    script = (
        "import json, sys\n"
        "from cloudsync.providers import registry\n"
        "registry.ADAPTERS['zone'] = registry.Registration('zone_rules', 'zone_adapter', 'ZoneProvider', None)\n"
        "from cloudsync.config.schema import stack_schema\n"
        "from cloudsync.config.loader import load_stack\n"
        "from cloudsync.diagnostics import CloudsyncError\n"
        "from cloudsync.policy.document import PROVIDERS\n"
        "schema = stack_schema()\n"
        "print(json.dumps({'targets': sorted(schema['definitions']),\n"
        "                  'principal': schema['definitions']['Principal']['properties']['zone'],\n"
        "                  'providers': PROVIDERS}))\n"
        "try:\n"
        "    load_stack('stack')\n"
        "except CloudsyncError as exc:\n"
        "    for diag in exc.diagnostics:\n"
        "        print(diag.render())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(tmp_path)})
    first, *problems = result.stdout.splitlines()
    facts = json.loads(first)
    assert "ZoneTarget" in facts["targets"]
    assert facts["principal"]["anyOf"][0]["pattern"] == "^[0-9]{6}$" and facts["providers"][-1] == "zone"
    assert problems == [
        "stack/cloudsync.yaml:10:12: error: secrets 'shop/Key' (stack/cloudsync.yaml:9) and 'shop/key' both map to "
        "remote name 'shop.key' in target 'z' (hint: rename one, or give one a names: {z: ...} override)",
        "stack/cloudsync.yaml:11:12: error: remote name 'shop.a-very-long-name-indeed' is not valid in zone: allowed "
        "are lowercase letters, digits and '.' (at most 20) (target 'z') (hint: set names: {z: <valid name>} on this "
        "secret)",
        "stack/cloudsync.yaml:12:41: error: zone keeps 10 characters of description (target 'z') (hint: shorten the "
        "description; a longer note can stay in the file as a YAML comment)",
        "stack/cloudsync.yaml:13:46: error: principal 'web' has no zone id, but this secret lives in zone target 'z' "
        "(hint: add 'zone:' to principals.web)",
    ], result.stdout + result.stderr

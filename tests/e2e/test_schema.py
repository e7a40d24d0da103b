"""`cloudsync schema`: what an editor's YAML language server gets (draft-07, hover text, errors)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import CliResult

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_LINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    import subprocess

    from tests.conftest import CLI

    def run(*args: str) -> dict[str, Any]:
        proc = subprocess.run([CLI, "schema", *args], capture_output=True, text=True, check=True,
                              cwd=tmp_path_factory.mktemp("schema"))
        loaded: dict[str, Any] = json.loads(proc.stdout)
        return loaded

    return {"stack": run(), "secrets": run("--kind", "secrets")}


def _properties(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (path, property schema) an editor can hover over; ``if`` conditions are not keys."""
    if isinstance(node, list):
        for item in node:
            yield from _properties(item, path)
    elif isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            yield f"{path}.{name}", prop
        for key, value in node.items():
            if key != "if":
                yield from _properties(value, f"{path}/{key}")


def _refs_with_siblings(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _refs_with_siblings(item)
    elif isinstance(node, dict):
        if "$ref" in node and len(node) > 1:
            yield node
        for value in node.values():
            yield from _refs_with_siblings(value)


@pytest.mark.parametrize("kind", ["stack", "secrets"])
def test_the_schema_is_draft_07_with_an_id_and_refs_the_language_server_follows(
        schemas: dict[str, dict[str, Any]], kind: str) -> None:
    schema = schemas[kind]
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["$id"] == f"urn:cloudsync:schema:{kind}:1"
    jsonschema.Draft7Validator.check_schema(schema)
    text = json.dumps(schema)
    assert "$defs" not in text and '"discriminator"' not in text
    # draft-07 ignores keywords beside $ref, which would drop the hover text of those keys.
    assert list(_refs_with_siblings(schema)) == []


@pytest.mark.parametrize("kind", ["stack", "secrets"])
def test_every_key_has_hover_text(schemas: dict[str, dict[str, Any]], kind: str) -> None:
    props = list(_properties(schemas[kind]))
    assert len(props) > 60 if kind == "stack" else len(props) > 30
    assert [path for path, prop in props if not str(prop.get("description", "")).strip()] == []


def test_hover_text_is_the_models_own(schemas: dict[str, dict[str, Any]]) -> None:
    from cloudsync.config.models import GenerateSpec, SecretDecl
    from cloudsync.providers.aws.rules import AwsTarget

    defs = schemas["stack"]["definitions"]
    for model in (SecretDecl, GenerateSpec, AwsTarget):
        for name, field in model.model_fields.items():
            if name == "provider":  # the schema says what the constant means, from the model's docstring
                continue
            key = field.alias or name
            assert defs[model.__name__]["properties"][key]["description"] == field.description


def test_the_checked_in_schemas_are_current(schemas: dict[str, dict[str, Any]]) -> None:
    """Examples point their editors at schema/*.json: a stale copy would show wrong keys."""
    fix = "regenerate: cloudsync schema > schema/cloudsync.schema.json; cloudsync schema --kind secrets > " \
          "schema/secrets.schema.json"
    assert json.loads((ROOT / "schema" / "cloudsync.schema.json").read_text()) == schemas["stack"], fix
    assert json.loads((ROOT / "schema" / "secrets.schema.json").read_text()) == schemas["secrets"], fix


def _example_files() -> list[Path]:
    return sorted(p for p in (ROOT / "examples").rglob("*.yaml")
                  if p.name == "cloudsync.yaml" or p.parent.name == "secrets")


@pytest.mark.parametrize("path", _example_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_names_its_schema_and_is_valid_under_it(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    match = SCHEMA_LINE.match(first)
    assert match, f"{path} does not start with the yaml-language-server line"
    schema_path = (path.parent / match.group(1)).resolve()
    assert schema_path.is_file()
    validator = jsonschema.Draft7Validator(json.loads(schema_path.read_text()))
    assert [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))] == []


def test_the_stacks_shown_in_the_docs_are_valid(schemas: dict[str, dict[str, Any]]) -> None:
    validator = jsonschema.Draft7Validator(schemas["stack"])
    shown = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for block in re.findall(r"```ya?ml\n(.*?)```", doc.read_text(), re.S):
            data = yaml.safe_load(block)
            if isinstance(data, dict) and {"version", "stack"} <= data.keys():
                shown.append(doc.name)
                assert [e.message for e in validator.iter_errors(data)] == [], doc
    assert "README.md" in shown


MISTAKES = [
    ("unknown key in an AWS target",
     {"targets": {"prod": {"provider": "aws", "region": "eu-west-1", "profil": "ops"}}},
     ["targets", "prod"], "'profil' was unexpected"),
    ("misspelt provider",
     {"targets": {"prod": {"provider": "awz", "region": "eu-west-1"}}},
     ["targets", "prod", "provider"], "'awz' is not one of ['aws', 'azure', 'gcp', 'local']"),
    ("a plaintext value",
     {"secrets": [{"name": "app/db", "targets": ["local"], "value": "hunter2"}]},
     ["secrets", 0, "value"], "is not valid under any of the given schemas"),
    ("a rotation without a unit",
     {"secrets": [{"name": "app/db", "targets": ["local"], "rotation": 30}]},
     ["secrets", 0, "rotation"], "is not valid under any of the given schemas"),
    ("a secret without targets",
     {"secrets": [{"name": "app/db"}]},
     ["secrets", 0], "'targets' is a required property"),
    ("a name with a space",
     {"secrets": [{"name": "app/db password", "targets": ["local"]}]},
     ["secrets", 0, "name"], "does not match"),
    ("an unknown generate setting",
     {"secrets": [{"name": "app/db", "targets": ["local"], "value": {"generate": {"lenght": 40}}}]},
     ["secrets", 0, "value"], "is not valid under any of the given schemas"),
]


@pytest.mark.parametrize(("what", "change", "where", "message"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_typical_mistakes_are_marked_where_they_are(
        schemas: dict[str, dict[str, Any]], what: str, change: dict[str, Any], where: list[Any], message: str,
        write_stack: Callable[..., Path], cli: Callable[..., CliResult]) -> None:
    doc: dict[str, Any] = {"version": 1, "stack": "shop", "targets": {"local": {"provider": "local"}}, **change}
    errors = list(jsonschema.Draft7Validator(schemas["stack"]).iter_errors(doc))
    assert [(list(e.absolute_path), message in e.message) for e in errors] == [(where, True)], what
    # The editor and `cloudsync validate` agree: what the schema marks, validate refuses.
    stack = write_stack(yaml.safe_dump(doc))
    assert cli("validate", "-C", str(stack)).code == 1


def test_a_valid_target_of_each_provider_passes(schemas: dict[str, dict[str, Any]]) -> None:
    doc = {"version": 1, "stack": "shop", "targets": {
        "local": {"provider": "local"},
        "aws-prod": {"provider": "aws", "region": "eu-west-1", "access_drift": "declared"},
        "gcp-prod": {"provider": "gcp", "project": "acme-prod", "keep_versions": 3},
        "azure-prod": {"provider": "azure", "vault_url": "https://acme-prod.vault.azure.net"},
    }}
    assert list(jsonschema.Draft7Validator(schemas["stack"]).iter_errors(doc)) == []
    # ...and a key of one provider is refused in another's target.
    doc["targets"]["gcp-prod"]["region"] = "eu-west-1"  # type: ignore[index]
    assert [list(e.absolute_path) for e in jsonschema.Draft7Validator(schemas["stack"]).iter_errors(doc)] == [
        ["targets", "gcp-prod"]]

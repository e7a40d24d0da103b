"""JSON Schemas of the stack files, for editors (``cloudsync schema``).

Editors validate YAML through the YAML language server, which speaks JSON Schema
draft-07; pydantic writes draft 2020-12. The conversion is small and mechanical:
``$defs`` become ``definitions``; a ``$ref`` with sibling keywords (which draft-07
ignores, losing the hover text) is wrapped in ``allOf``; the targets' OpenAPI
``discriminator`` becomes ``if``/``then`` on ``provider``, so a mistake in an AWS target
is reported against the AWS target model alone instead of against every provider's.

Every description comes from the models (field descriptions and class docstrings), so
the schema and the validation cannot say different things.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

DIALECT = "http://json-schema.org/draft-07/schema#"
STACK_ID = "urn:cloudsync:schema:stack:1"
SECRETS_ID = "urn:cloudsync:schema:secrets:1"
_REF_TEMPLATE = "#/definitions/{model}"


def stack_schema() -> dict[str, Any]:
    """Draft-07 schema of ``cloudsync.yaml`` (its ``secrets`` items are full declarations)."""
    from cloudsync.config.models import StackFile

    schema = _with_declarations(StackFile)
    schema["properties"]["targets"] = _targets_by_provider(schema["properties"]["targets"], schema["definitions"])
    return _finish(schema, STACK_ID)


def secrets_schema() -> dict[str, Any]:
    """Draft-07 schema of a ``secrets/*.yaml`` file."""
    from cloudsync.config.models import SecretsFile

    return _finish(_with_declarations(SecretsFile), SECRETS_ID)


def _with_declarations(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s schema with its ``secrets`` items as full declarations (the files keep them as raw
    mappings, so the loader can report every declaration's problems by line)."""
    from cloudsync.config.models import SecretDecl

    schema = _model_schema(model)
    _add_model(schema.setdefault("definitions", {}), SecretDecl)
    schema["properties"]["secrets"]["items"] = {"$ref": "#/definitions/SecretDecl"}
    return schema


def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template=_REF_TEMPLATE)
    schema["definitions"] = schema.pop("$defs", {})
    return schema


def _add_model(defs: dict[str, Any], model: type[BaseModel]) -> None:
    schema = _model_schema(model)
    defs.update(schema.pop("definitions"))
    defs[model.__name__] = schema


def _targets_by_provider(targets: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """``targets.<name>``: one ``if provider == X then X's model`` per provider."""
    (name_pattern, union), = targets["patternProperties"].items()
    mapping: dict[str, str] = union["discriminator"]["mapping"]
    kinds = sorted(mapping)
    per_provider = [
        {"if": {"properties": {"provider": {"const": kind}}, "required": ["provider"]},
         "then": {"$ref": mapping[kind]}}
        for kind in kinds
    ]
    one_target = {
        "type": "object",
        "description": "one place secrets are kept; `provider` selects which keys apply",
        "required": ["provider"],
        "properties": {"provider": {"enum": kinds, "description": "the cloud: " + ", ".join(kinds)}},
        "allOf": per_provider,
    }
    for kind in kinds:
        # Each provider model narrows `provider` to one constant; say what it means on hover.
        model = defs[mapping[kind].rsplit("/", 1)[1]]
        model["properties"]["provider"].setdefault("description", f"{kind}: {model.get('description', kind)}")
    return {**{k: v for k, v in targets.items() if k != "patternProperties"},
            "patternProperties": {name_pattern: one_target}, "additionalProperties": False}


def _finish(schema: dict[str, Any], schema_id: str) -> dict[str, Any]:
    schema = _draft07(schema)
    return {"$schema": DIALECT, "$id": schema_id, **schema}


def _draft07(node: Any) -> Any:
    """Rewrite what draft-07 reads differently from 2020-12, everywhere in the tree."""
    if isinstance(node, list):
        return [_draft07(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _draft07(value) for key, value in node.items() if key != "discriminator"}
    if isinstance(node.get("description"), str):
        # Docstrings mark code ``like this``; editors render hover text as Markdown.
        node["description"] = node["description"].replace("``", "`")
    if "$ref" in node and len(node) > 1:
        # draft-07 ignores every keyword beside $ref: keep them by moving the $ref into allOf.
        node = {"allOf": [{"$ref": node.pop("$ref")}], **node}
    return node

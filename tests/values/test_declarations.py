"""Value settings as written in the files: forms, and whole-stack checks with positions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.config.models import Rotation, as_timedelta, rotation_owner
from cloudsync.diagnostics import CloudsyncError

HEAD = """\
version: 1
stack: shop
targets:
  local: {provider: local}
  mirror: {provider: local, path: .cloudsync/mirror.db}
secrets:
"""


def errors(write_stack: Callable[..., Path], secrets: str) -> list[str]:
    root = write_stack(HEAD + secrets)
    with pytest.raises(CloudsyncError) as raised:
        load_stack(root)
    return [d.render().replace(f"{root}/", "").split("cloudsync.yaml:", 1)[1] for d in raised.value.diagnostics]


def test_rotation_takes_a_duration_or_an_owner(write_stack: Callable[..., Path]) -> None:
    root = write_stack(HEAD + """\
  - {name: a, targets: [local], rotation: 30d}
  - {name: b, targets: [local], rotation: {every: 7d, by: external}}
  - {name: c, targets: [local], rotation: {every: 12h}}
""")
    rotations = [d.decl.rotation for d in load_stack(root).secrets]
    assert rotations == ["30d", Rotation(every="7d", by="external"), Rotation(every="12h")]
    assert [rotation_owner(r) for r in rotations] == ["cloudsync", "external", "cloudsync"]
    assert [as_timedelta(r).total_seconds() / 3600 for r in rotations] == [720, 168, 12]  # type: ignore[union-attr]


def test_bad_rotation_settings_point_at_the_key(write_stack: Callable[..., Path]) -> None:
    assert errors(write_stack, """\
  - name: a
    targets: [local]
    rotation: {every: 30d, by: lambda}
  - name: b
    targets: [local]
    rotation: 30 days
""") == [
        "9:32: error: invalid by 'lambda': expected 'cloudsync' or 'external'",
        "12:15: error: rotation: bad duration '30 days' (hint: a whole number and a unit (min, h, d, w, mo, y), "
        "e.g. 90min, 12h, 30d, 2w)",
    ]


def test_a_cycle_of_from_names_every_declaration_on_it(write_stack: Callable[..., Path]) -> None:
    assert errors(write_stack, """\
  - name: app/a
    targets: [local]
    value: {from: {target: mirror, name: app/b}}
  - name: app/b
    targets: [mirror]
    value: {from: {target: local, name: app/a}}
""") == [
        "9:19: error: the values of these secrets are derived from each other in a cycle: app/a (cloudsync.yaml:7) "
        "-> app/b (cloudsync.yaml:10) -> app/a (cloudsync.yaml:7) (hint: one of them must take its value from a real "
        "source (generate, sops, env, file, or a target no declaration in the cycle writes))",
    ]


def test_a_cycle_through_public_keys_and_cas_is_found_too(write_stack: Callable[..., Path]) -> None:
    found = errors(write_stack, """\
  - name: app/ca
    targets: [local]
    value: {from: {target: local, name: app/pub}}
  - name: app/pub
    targets: [local]
    value: {public_key_of: app/cert}
  - name: app/cert
    targets: [local]
    value: {generate: {type: certificate, common_name: c, ca: app/ca}}
""")
    assert any("cycle: app/ca (cloudsync.yaml:7) -> app/pub (cloudsync.yaml:10) -> app/cert (cloudsync.yaml:13) -> "
               "app/ca" in e for e in found), found
    assert found[0] == ("15:63: error: 'app/ca' is not a CA (declared at cloudsync.yaml:7) (hint: declare the CA with "
                        "value: {generate: {type: ca, common_name: ...}})")


def test_references_to_other_declarations_must_exist_and_fit(write_stack: Callable[..., Path]) -> None:
    assert errors(write_stack, """\
  - name: app/pw
    targets: [local]
    value: {generate: {length: 20}}
  - name: app/pub
    targets: [local]
    value: {public_key_of: app/pw}
  - name: app/pub2
    targets: [local]
    value: {public_key_of: {secret: app/key, target: mirror}}
  - name: app/key
    targets: [local]
    value: {generate: {type: ed25519}}
  - name: app/cert
    targets: [local]
    value: {generate: {type: certificate, common_name: c, ca: app/cq}}
  - name: app/self
    targets: [local, mirror]
    value: {from: {target: mirror, name: app/self}}
""") == [
        "12:28: error: 'app/pw' is a generated password, which has no public half (hint: point it at a key, CA or "
        "certificate, e.g. one declared with generate: {type: ed25519})",
        "15:54: error: 'app/key' does not live in target 'mirror' (hint: its targets: local)",
        "21:63: error: CA 'app/cq' is not declared in this stack (hint: did you mean 'app/cert'?)",
        "24:19: error: secret 'app/self' takes its value from itself in target 'mirror' (hint: remove 'mirror' from "
        "its targets: that target is the source of truth)",
    ]


def test_generate_settings_are_checked_at_their_line(write_stack: Callable[..., Path]) -> None:
    assert errors(write_stack, """\
  - name: app/pw
    targets: [local]
    value: {generate: {length: 20, charset: hex, require: [upper]}}
  - name: app/key
    targets: [local]
    value:
      generate: {type: ed25519, bits: 4096}
""") == [
        "9:23: error: generate: charset hex (minus excluded characters) has no upper characters, so 'require' "
        "cannot be met",
        "13:17: error: 'bits' cannot be used with type ed25519; type ed25519 takes format",
    ]


def test_the_json_schema_accepts_every_value_form() -> None:
    import jsonschema

    from cloudsync.config.schema import stack_schema

    doc = {"version": 1, "stack": "shop", "targets": {"local": {"provider": "local"}}, "secrets": [
        {"name": "a/key", "targets": ["local"], "value": {"generate": {"type": "ed25519", "format": "openssh"}}},
        {"name": "a/pub", "targets": ["local"], "value": {"public_key_of": "a/key"}},
        {"name": "a/pub2", "targets": ["local"], "value": {"public_key_of": {"secret": "a/key", "format": "pem"}}},
        {"name": "a/pw", "targets": ["local"], "value": {"generate": {"require": ["digit"], "exclude": "0O"}},
         "rotation": {"every": "30d", "by": "external"}},
        {"name": "a/s", "targets": ["local"], "value": {"sops": "secrets/x.enc.yaml", "key": "a.b"}, "rotation": "7d"},
    ]}
    validator = jsonschema.Draft7Validator(stack_schema())
    assert list(validator.iter_errors(doc)) == []
    doc["secrets"][3]["rotation"] = {"every": "30d", "by": "someone"}  # type: ignore[index]
    assert [e.message for e in validator.iter_errors(doc)] != []


def test_a_malformed_sops_key_path_is_a_load_error(write_stack: Callable[..., Path]) -> None:
    assert errors(write_stack, """\
  - name: app/a
    targets: [local]
    value: {sops: secrets/a.enc.yaml, key: 'a..b'}
""") == ["9:12: error: bad sops key path 'a..b': the key path has an empty segment"]

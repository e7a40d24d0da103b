"""A declaration's ``value:`` as one typed source per kind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.diagnostics import CloudsyncError
from cloudsync.values.sources import ResolveContext, resolve
from cloudsync.values.spec import (
    EnvSource,
    FileSource,
    FromSource,
    GenerateSource,
    PublicKeySource,
    SopsSource,
    generate_spec,
    generated,
    source_of,
)

STACK = """\
version: 1
stack: shop
targets:
  local: {provider: local}
secrets:
  - {name: a/generated, targets: [local], value: {generate: {length: 20}}}
  - {name: a/env, targets: [local], value: {env: SHOP_A}}
  - {name: a/sops, targets: [local], value: {sops: secrets/a.enc.yaml, key: db.password}}
  - {name: a/from, targets: [local], value: {from: {target: local, name: a/env}}}
  - {name: a/file, targets: [local], value: {file: values/a.txt}}
  - {name: a/public, targets: [local], value: {public_key_of: a/key}}
  - {name: a/key, targets: [local], value: {generate: {type: ed25519}}}
  - {name: a/none, targets: [local]}
"""


def test_each_kind_is_its_own_type_with_its_fields(write_stack: Callable[..., Path]) -> None:
    decls = load_stack(write_stack(STACK)).by_name
    sources = {name: source_of(d.decl.value) for name, d in decls.items()}
    assert isinstance(sources["a/generated"], GenerateSource) and sources["a/generated"].spec.length == 20
    assert sources["a/env"] == EnvSource("SHOP_A")
    assert sources["a/sops"] == SopsSource("secrets/a.enc.yaml", "db.password")
    assert isinstance(sources["a/from"], FromSource) and sources["a/from"].spec.name == "a/env"
    assert sources["a/file"] == FileSource("values/a.txt")
    assert isinstance(sources["a/public"], PublicKeySource) and sources["a/public"].spec.secret == "a/key"
    assert sources["a/none"] is None
    assert generate_spec(decls["a/key"]) is not None and generate_spec(decls["a/env"]) is None


def test_asking_a_declaration_for_what_it_does_not_declare_is_a_diagnostic(
        write_stack: Callable[..., Path]) -> None:
    root = write_stack(STACK)
    decls = load_stack(root).by_name
    with pytest.raises(CloudsyncError) as not_generated:
        generated(decls["a/env"])
    assert not_generated.value.diagnostics[0].line == 7
    assert "is not generated" in not_generated.value.diagnostics[0].message
    ctx = ResolveContext(root=root, declarations=decls)
    for name, line, says in (("a/generated", 6, "generated when applied"), ("a/none", 13, "declares no value")):
        with pytest.raises(CloudsyncError) as raised:
            resolve(decls[name], ctx)
        (diag,) = raised.value.diagnostics
        assert diag.line == line and says in diag.message, diag.render()

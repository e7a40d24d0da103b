"""Documents carry only what enabled policies read, and no policy can tell the difference."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from cloudsync.apply import apply_plan
from cloudsync.config.loader import load_stack
from cloudsync.plan.build import build_plan, open_session, select_targets
from cloudsync.policy import engine, evaluate
from cloudsync.policy.document import REMOTE_SCHEMA, SECRET_SCHEMA, input_schema, pruned
from cloudsync.policy.references import WHOLE, needs

ROOTS = input_schema()["properties"]

# Rules that read the documents in every way the analysis has to follow, or give up on.
TRICKY = """\
policies:
  - id: T001
    title: only per-secret grants, through a filter (a bound name it cannot trace)
    severity: warning
    rule: 'remote == null || remote.effective_readers.filter(r, r.declared).all(y, y.via == "secret" && y.name == "api")'
    message: m
  - id: T002
    title: a computed key
    severity: warning
    rule: 'secret.labels[params.key] != "t1"'
    message: m
    parameters: {key: {default: tier}}
  - id: T003
    title: has() of an optional field
    severity: warning
    rule: 'has(secret.description) && secret.description != "secret 3"'
    message: m
  - id: T004
    title: the keys of a closed object
    severity: warning
    rule: 'secret.value.all(k, k != "generate") || secret.value.kind == "env"'
    message: m
  - id: T005
    title: presence, then one field of each reader
    severity: warning
    rule: 'remote != null ? remote.effective_readers.exists(r, r.name == "worker") : true'
    message: m
"""


@pytest.mark.parametrize(("sources", "expected"), [
    (['remote.effective_readers.all(r, r.declared)'], {"remote": {"effective_readers": {"*": {"declared": WHOLE}}}}),
    (['remote != null && size(remote.readers) > 0'], {"remote": {"readers": WHOLE}}),
    (['remote == null'], {"remote": {}}),
    (['secret.labels[params.key] == "x"'], {"secret": {"labels": WHOLE}, "params": {"key": WHOLE}}),
    (['secret.value.all(k, k != "x")'], {"secret": {"value": {"*": WHOLE}}}),
    (['has(secret.value.generate.type)'], {"secret": {"value": {"generate": {"type": WHOLE}}}}),
    (['secret.readers.filter(r, r != "a").exists(x, x == "b")'], dict.fromkeys(ROOTS, WHOLE)),
    (['secret[params.field] == 1'], {"secret": WHOLE, "params": {"field": WHOLE}}),
])
def test_needs_keeps_every_field_a_rule_can_reach(sources: list[str], expected: dict[str, Any]) -> None:
    assert needs(sources, ROOTS) == expected


def test_pruned_leaves_maps_lists_and_nulls_whole_and_drops_unread_fields() -> None:
    secret = {"name": "a", "description": "d", "labels": {"env": "prod", "x": "y"},
              "value": {"kind": "generate", "generate": {"type": "password", "length": 9, "charset": "hex"}}}
    need = {"labels": WHOLE, "value": {"generate": {"length": WHOLE}}}
    assert pruned(secret, need, SECRET_SCHEMA) == {"labels": {"env": "prod", "x": "y"},
                                                   "value": {"generate": {"length": 9}}}
    assert pruned(secret, {"value": {"*": {}}}, SECRET_SCHEMA) == {"value": secret["value"]}  # keys are iterated
    remote = {"name": "n", "effective_readers": [{"principal": "p", "declared": True, "via": "secret"}]}
    assert pruned(remote, {"effective_readers": {"*": {"declared": WHOLE}}}, REMOTE_SCHEMA) == {
        "effective_readers": [{"declared": True}]}
    assert pruned(None, {"name": WHOLE}, REMOTE_SCHEMA) is None


def _applied_stack(root: Path) -> Path:
    lines = ["version: 1", "stack: prune", "targets:", "  local: {provider: local, path: .cloudsync/local.db}",
             "principals:", "  api: {}", "  worker: {}", "defaults:", "  labels: {owner: team}", "secrets:"]
    for i in range(24):
        value = "{env: PRUNE_VALUE}" if i % 2 else "{generate: {length: 32}}"
        lines += [f"  - name: team/s{i}", "    targets: [local]", f"    labels: {{env: dev, tier: t{i % 3}}}",
                  f"    value: {value}", f"    readers: [{'api' if i % 2 else 'worker'}]"]
        if i % 4:
            lines.append(f"    description: secret {i}")
    (root / "cloudsync.yaml").write_text("\n".join(lines) + "\n")
    (root / "policies").mkdir()
    (root / "policies" / "tricky.yaml").write_text(textwrap.dedent(TRICKY))
    stack = load_stack(root)
    with open_session(stack) as session:
        apply_plan(session, build_plan(session, select_targets(stack, None)), parallelism=2)
    return root


def _violations(root: Path) -> set[tuple[str, str]]:
    stack = load_stack(root)
    with open_session(stack) as session:
        run = build_plan(session, select_targets(stack, None))
    assert run.actual["local"], "the plan reads the applied secrets: remote documents are built"
    report = evaluate(stack, run)
    return {(v.policy, v.address) for v in [*report.violations, *report.waived]}


def test_every_policy_finds_the_same_violations_with_pruned_and_with_whole_documents(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNE_VALUE", "not-a-secret-but-a-value")
    root = _applied_stack(tmp_path)
    found = _violations(root)
    monkeypatch.setattr(engine, "needs", lambda sources, roots: dict.fromkeys(roots, WHOLE))
    assert _violations(root) == found
    # Each tricky rule is violated somewhere and complied with elsewhere, so a field dropped
    # by mistake would turn a pass into an evaluation error (a violation) or the reverse.
    for policy in ("T001", "T002", "T003", "T004", "T005"):
        hits = {address for p, address in found if p == policy}
        assert 0 < len(hits) < 24, (policy, len(hits))

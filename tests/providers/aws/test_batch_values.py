"""Values copied from AWS are read in bulk: BatchGetSecretValue, 20 secrets a call.

Every count is taken on the wire (the proxy's log of operations), with the real boto3 client
against moto. AWS's per-secret answers that moto cannot give (a denied or undecryptable
secret inside ``Errors``, pages joined by ``NextToken``) come from the proxy (batch_proxy.py).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.diagnostics import CloudsyncError
from cloudsync.plan.build import open_session
from cloudsync.plan.model import ValueMode
from cloudsync.providers.aws import AwsProvider
from cloudsync.providers.aws.actions import ACTIONS, QUOTAS, Bucket, policy_document
from cloudsync.providers.base import NotFoundError, Operation, ProviderError
from cloudsync.providers.errors import ErrorKind
from cloudsync.values.secret import SecretValue
from tests.conftest import CliResult, files_containing
from tests.fakes.moto_server import AWS_FAMILIES, AWS_QUOTAS, MotoServer
from tests.providers.aws.batch_proxy import BatchProxy
from tests.providers.aws.conftest import REGION, Engine, assert_applied, provider_via

COPIES = 45
DENIED = "User: arn:aws:sts::123456789012:assumed-role/cloudsync/x is not authorized to perform: " \
         "secretsmanager:GetSecretValue on resource: vendor/s-03 because no resource-based policy allows it"


def source(i: int) -> str:
    return f"vendor/s-{i:02d}"


def copy(i: int) -> str:
    return f"copied/c-{i:02d}"


def stack_text(endpoint: str, count: int = COPIES) -> str:
    """Secrets of a local target, each copied from a secret of the AWS target ``aws-src``."""
    secrets = "".join(f"  - name: {copy(i)}\n    targets: [local]\n"
                      f"    value: {{from: {{target: aws-src, name: {source(i)}}}}}\n" for i in range(count))
    return ("version: 1\nstack: payments\ntargets:\n"
            f"  aws-src: {{provider: aws, region: {REGION}, endpoint: \"{endpoint}\"}}\n"
            "  local: {provider: local, path: .cloudsync/local.db}\n"
            "policy: {builtin: false}  # about reading values; tests/policy covers the pack\n"
            "secrets:\n" + secrets)


@pytest.fixture
def batch(aws: MotoServer) -> Iterator[BatchProxy]:
    server = BatchProxy(aws.url)
    yield server
    server.close()


@pytest.fixture
def sources(sm: Any, canary: str) -> list[str]:
    """COPIES secrets in AWS, each value a canary of its own (out of band: the stack does not own them)."""
    values = [f"{canary}-{i:02d}" for i in range(COPIES)]
    for i, value in enumerate(values):
        sm.create_secret(Name=source(i), SecretString=value)
    return values


def wire(proxy: BatchProxy) -> Counter[str]:
    return Counter(proxy.seen)


def test_a_plan_of_45_copied_values_reads_them_in_three_batches(engine: Engine, batch: BatchProxy,
                                                                sources: list[str]) -> None:
    engine.write(stack_text(batch.url))
    run = engine.plan()
    calls = wire(batch)
    assert calls["BatchGetSecretValue"] == math.ceil(COPIES / 20) == 3
    assert calls["GetSecretValue"] == 0
    assert [c.action.value for c in run.plan.real_changes] == ["create"] * COPIES
    assert all(c.value is not None and c.value.mode is ValueMode.SOURCE for c in run.plan.real_changes)

    batch.seen.clear()
    run, report = engine.apply()
    assert_applied(report)
    assert wire(batch)["GetSecretValue"] == 0  # apply writes the values the plan read
    stack = load_stack(engine.root)
    with open_session(stack) as session:
        held = [session.read_value("local", copy(i)).reveal_text() for i in range(COPIES)]
    assert held == sources


def test_the_same_plan_read_one_value_at_a_time_before(engine: Engine, batch: BatchProxy, sources: list[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """What the batch replaces: the provider contract's default loop, one GetSecretValue per value."""
    from cloudsync.providers.base import Provider

    monkeypatch.setattr(AwsProvider, "read_values", Provider.read_values)
    engine.write(stack_text(batch.url))
    engine.plan()
    assert wire(batch)["GetSecretValue"] == COPIES and wire(batch)["BatchGetSecretValue"] == 0


def _single_read_error(root: Path, target: str, secret: str) -> str:
    """The diagnostic of reading one value on its own, the way every value was read before batches."""
    with open_session(load_stack(root)) as session, pytest.raises(CloudsyncError) as raised:
        session.read_value(target, secret)
    return raised.value.diagnostics[0].message


def test_a_missing_source_among_them_is_todays_diagnostic(engine: Engine, batch: BatchProxy, sources: list[str],
                                                          sm: Any, canary: str) -> None:
    sm.delete_secret(SecretId=source(7), ForceDeleteWithoutRecovery=True)
    engine.write(stack_text(batch.url))
    with pytest.raises(CloudsyncError) as raised:
        engine.plan()
    assert wire(batch)["GetSecretValue"] == 0 and wire(batch)["BatchGetSecretValue"] == 3
    (problem,) = raised.value.diagnostics
    single = _single_read_error(engine.root, "aws-src", source(7))
    assert problem.message == f"cannot read aws-src:{source(7)} for secret '{copy(7)}': {single}"
    assert "(not found)" in single and "GetSecretValue vendor/s-07" in single
    assert problem.file is not None and problem.file.endswith("cloudsync.yaml") and problem.line is not None
    assert canary not in problem.render()


@pytest.mark.parametrize(("code", "message", "kind"), [
    ("AccessDeniedException", DENIED, ErrorKind.PERMISSION),
    ("DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
     ErrorKind.OTHER),
])
def test_one_secrets_error_in_the_batch_is_that_secrets_alone(engine: Engine, batch: BatchProxy, sources: list[str],
                                                              canary: str, tmp_path: Path, code: str, message: str,
                                                              kind: ErrorKind) -> None:
    batch.secret_errors[source(3)] = (code, message)
    names = [source(i) for i in range(COPIES)]
    for adapter in provider_via(batch, tmp_path):
        found = adapter.read_values(names)
    failed = {name: outcome for name, outcome in found.items() if isinstance(outcome, ProviderError)}
    assert list(failed) == [source(3)]
    error = failed[source(3)]
    assert error.kind is kind and error.code == code and not isinstance(error, NotFoundError)
    assert error.message.startswith(f"GetSecretValue {source(3)}: ")
    if kind is ErrorKind.PERMISSION:
        assert error.permission == "secretsmanager:GetSecretValue" and "cloudsync permissions" in (error.hint or "")
    assert [found[n] for n in names if n != source(3)] == [SecretValue(v) for i, v in enumerate(sources) if i != 3]
    assert wire(batch)["GetSecretValue"] == 0

    engine.write(stack_text(batch.url))
    with pytest.raises(CloudsyncError) as raised:
        engine.plan()
    (problem,) = raised.value.diagnostics  # the other 44 resolved
    assert problem.message.startswith(f"cannot read aws-src:{source(3)} for secret '{copy(3)}': target aws-src")
    assert f"({kind.value})" in problem.message
    assert canary not in problem.render() + str(error) + repr(error)


def test_pages_joined_by_next_token_are_followed(batch: BatchProxy, sources: list[str], tmp_path: Path) -> None:
    batch.page_size = 7
    names = [source(i) for i in range(20)]
    for adapter in provider_via(batch, tmp_path):
        found = adapter.read_values(names)
    assert [found[n] for n in names] == [SecretValue(v) for v in sources[:20]]
    assert wire(batch) == Counter({"BatchGetSecretValue": 3})  # 7 + 7 + 6


def test_a_transient_error_of_one_secret_is_retried_on_its_own(batch: BatchProxy, sources: list[str],
                                                               tmp_path: Path) -> None:
    batch.secret_errors[source(5)] = ("InternalServiceError", "try again")
    for adapter in provider_via(batch, tmp_path):
        found = adapter.read_values([source(i) for i in range(10)])
    assert found[source(5)] == SecretValue(sources[5])
    assert wire(batch) == Counter({"BatchGetSecretValue": 1, "GetSecretValue": 1})


def test_a_denied_batch_falls_back_to_single_reads_and_says_so(engine: Engine, batch: BatchProxy,
                                                                sources: list[str], canary: str) -> None:
    """An IAM policy written before cloudsync used BatchGetSecretValue: the plan still works, reading
    one value at a time (each secret's own permission is GetSecretValue), asks once, and the access
    notes name the permission to add."""
    batch.fail("BatchGetSecretValue", "AccessDeniedException", times=10, message=(
        "User: x is not authorized to perform: secretsmanager:BatchGetSecretValue because no identity-based "
        "policy allows the secretsmanager:BatchGetSecretValue action"))
    engine.write(stack_text(batch.url, count=45))
    outcome = engine.plan()
    calls = wire(batch)
    assert calls["GetSecretValue"] == 45
    assert 1 <= calls["BatchGetSecretValue"] <= 3  # chunks already in flight are refused too; none after
    notes = [note for scan in outcome.access.values() for note in scan.notes]
    assert any("secretsmanager:BatchGetSecretValue" in note and "one at a time" in note for note in notes), notes
    assert canary not in "\n".join(notes)


def test_values_never_reach_output_or_the_plan_file(batch: BatchProxy, sources: list[str], canary: str,
                                                    tmp_path: Path, cli: Callable[..., CliResult],
                                                    aws_env: dict[str, str]) -> None:
    root = tmp_path / "stack"
    root.mkdir()
    (root / "cloudsync.yaml").write_text(stack_text(batch.url))
    env = {**aws_env, "CLOUDSYNC_PLAN_KEY": "p" * 32}
    results = [cli("plan", "--out", str(root / "plan.json"), "-C", str(root), "-v", env=env),
               cli("plan", "--format", "json", "-C", str(root), env=env)]
    assert [r.code for r in results] == [0, 0], [r.output[-600:] for r in results]
    assert (root / "plan.json").exists()
    assert wire(batch)["BatchGetSecretValue"] == 6 and wire(batch)["GetSecretValue"] == 0
    assert not any(canary in r.output for r in results)
    assert files_containing(root, canary, skip=lambda p: p.name.startswith("local.db")) == []


def test_batch_reads_are_paced_in_their_own_family_and_granted_on_any_resource() -> None:
    """AWS's BatchGetSecretValue quota (100/s) is a family of its own, as the test proxy enforces it;
    the IAM action takes no resource, so it is granted on "*" while GetSecretValue stays scoped."""
    assert ACTIONS["BatchGetSecretValue"].bucket is Bucket.BATCH
    assert QUOTAS[Bucket.BATCH] == AWS_QUOTAS[AWS_FAMILIES["BatchGetSecretValue"]] == 100
    for operation in (Operation.PLAN, Operation.APPLY):
        statements = policy_document(operation, stack="payments", region=REGION)["Statement"]
        anywhere = [s for s in statements if "secretsmanager:BatchGetSecretValue" in s["Action"]]
        assert [s["Resource"] for s in anywhere] == ["*"]
        scoped = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
        assert scoped and all(s["Resource"] != "*" and "Condition" in s for s in scoped)
    metadata = policy_document(Operation.PLAN_METADATA, stack="payments", region=REGION)["Statement"]
    assert not any("secretsmanager:BatchGetSecretValue" in s["Action"] for s in metadata)


def test_apply_copies_a_generated_value_from_its_sibling_target_in_batches(
        engine: Engine, batch: BatchProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """A generated value that one target lost is copied from the target that holds it (COPY mode):
    apply reads those sources in one bulk read per target, not one call per change."""
    monkeypatch.setenv("CLOUDSYNC_FINGERPRINT_KEY", "f" * 64)  # no key read: every value call is a copy
    count = 25
    secrets = "".join(f"  - name: gen/g-{i:02d}\n    targets: [aws-src, local]\n"
                      "    value: {generate: {length: 24}}\n" for i in range(count))
    engine.write(stack_text(batch.url, count=0).replace("secrets:\n", "secrets:\n" + secrets))
    assert_applied(engine.apply()[1])
    (engine.root / ".cloudsync" / "local.db").unlink()  # the local target lost every value

    batch.seen.clear()
    run, report = engine.apply()
    assert_applied(report)
    copied = [c for c in run.plan.real_changes if c.value is not None and c.value.mode is ValueMode.COPY]
    assert len(copied) == count and {c.value.copy_from for c in copied if c.value} == {"aws-src"}
    assert wire(batch)["BatchGetSecretValue"] == math.ceil(count / 20) and wire(batch)["GetSecretValue"] == 0
    with open_session(load_stack(engine.root)) as session:
        for i in range(count):
            assert session.read_value("local", f"gen/g-{i:02d}") == session.read_value("aws-src", f"gen/g-{i:02d}")


def test_public_halves_of_keys_kept_in_aws_are_read_in_one_batch(engine: Engine, batch: BatchProxy) -> None:
    """``public_key_of`` reads its private key from the key's target: with every other value read, in bulk."""
    count = 12
    secrets = "".join(f"  - name: keys/k-{i:02d}\n    targets: [aws-src]\n    value: {{generate: {{type: ed25519}}}}\n"
                      f"  - name: pub/p-{i:02d}\n    targets: [local]\n    value: {{public_key_of: keys/k-{i:02d}}}\n"
                      for i in range(count))
    engine.write(stack_text(batch.url, count=0).replace("secrets:\n", "secrets:\n" + secrets))
    assert_applied(engine.apply()[1])  # the first apply derives the halves from what it writes

    batch.seen.clear()
    run = engine.plan()
    assert run.plan.real_changes == []
    assert wire(batch)["BatchGetSecretValue"] == 1 and wire(batch)["GetSecretValue"] == 0


def test_binary_values_and_values_named_twice(batch: BatchProxy, sm: Any, tmp_path: Path) -> None:
    sm.create_secret(Name="bin", SecretBinary=b"\xff\x00binary")
    sm.create_secret(Name="text", SecretString="text-value")
    for adapter in provider_via(batch, tmp_path):
        found = adapter.read_values(["bin", "text", "bin"])
    assert found == {"bin": SecretValue(b"\xff\x00binary"), "text": SecretValue("text-value")}
    assert wire(batch) == Counter({"BatchGetSecretValue": 1})


def test_a_batch_refused_as_a_whole_is_read_one_secret_at_a_time(batch: BatchProxy, sources: list[str],
                                                                 tmp_path: Path) -> None:
    """A request AWS refuses as a whole (a name it would not take) must not fail the other names."""
    batch.fail("BatchGetSecretValue", "InvalidParameterException", message="You provided an invalid value.")
    names = [source(i) for i in range(3)]
    for adapter in provider_via(batch, tmp_path):
        found = adapter.read_values(names)
    assert [found[n] for n in names] == [SecretValue(v) for v in sources[:3]]
    assert wire(batch) == Counter({"BatchGetSecretValue": 1, "GetSecretValue": 3})

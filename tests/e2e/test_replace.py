"""`cloudsync plan/apply --replace`: a new value now for a generated secret, everywhere it lives,
with everything derived from it in the same apply; refused for values cloudsync does not make."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from cloudsync.providers.local import LocalStore, LocalStoreError
from cloudsync.values import certs
from tests.conftest import CliResult, assert_no_canary, files_containing

STACK = """\
version: 1
stack: leaky
policy: {builtin: false}
targets:
  local: {provider: local}
  mirror: {provider: local, path: .cloudsync/mirror.db}
  backup: {provider: local, path: .cloudsync/backup.db}
secrets:
  - name: app/api-key
    targets: [local, mirror, backup]
    value: {generate: {length: 40}}
  - name: app/api-key-copy
    targets: [mirror]
    value: {from: {target: local, name: app/api-key}}
  - name: app/untouched
    targets: [local]
    value: {generate: {}}
  - name: app/smtp-password
    targets: [local]
    value: {env: SMTP_PASSWORD}
  - name: app/vendor-token
    targets: [local]
    value: {sops: secrets/vendor.enc.yaml, key: token}
  - name: app/rotated-elsewhere
    targets: [local]
    value: {generate: {}}
    rotation: {every: 30d, by: external}
  - name: mtls/ca
    targets: [local]
    value: {generate: {type: ca, common_name: Leaky CA}}
  - name: mtls/ca-cert
    targets: [mirror]
    value: {public_key_of: mtls/ca}
  - name: mtls/client
    targets: [local]
    value: {generate: {type: certificate, ca: mtls/ca, common_name: client}}
"""


def _digest(value: bytes) -> str:
    """What the test compares values by: never the value itself in an assertion message."""
    return hashlib.sha256(value).hexdigest()[:16]


def _values(stack: Path) -> dict[str, str]:
    found = {}
    for store in ("local", "mirror", "backup"):
        path = stack / ".cloudsync" / f"{store}.db"
        db = LocalStore(path)
        try:
            for name in ("app/api-key", "app/api-key-copy", "app/untouched", "mtls/ca", "mtls/ca-cert", "mtls/client"):
                try:
                    found[f"{store}:{name}"] = _digest(db.get_value(name).reveal())
                except LocalStoreError:  # not in this store
                    continue
        finally:
            db.close()
    return found


@pytest.fixture
def stack(write_stack: Callable[..., Path], cli: Callable[..., CliResult], canary: str) -> Path:
    root = write_stack(STACK, {"secrets/vendor.enc.yaml": "not: read in these tests\n"})
    # The sops secret is refused before its file is ever read: plans here leave it out by target.
    (root / "cloudsync.yaml").write_text(STACK.replace("""  - name: app/vendor-token
    targets: [local]
    value: {sops: secrets/vendor.enc.yaml, key: token}
""", ""))
    applied = cli("apply", "-C", str(root), "--auto-approve", env={"SMTP_PASSWORD": canary})
    assert applied.code == 0, applied.output
    return root


def _changes(result: CliResult) -> list[tuple[str, str, list[str], str | None]]:
    assert result.code == 0, result.output
    return [(c["address"], c["action"], c["reasons"], (c.get("value") or {}).get("mode"))
            for c in json.loads(result.stdout)["changes"]]


def test_replace_writes_a_new_value_in_every_target_and_its_copy_follows(
        stack: Path, cli: Callable[..., CliResult], canary: str) -> None:
    env = {"SMTP_PASSWORD": canary}
    before = _values(stack)
    planned = cli("plan", "-C", str(stack), "--replace", "app/api-key", "--format", "json", env=env)
    assert _changes(planned) == [
        ("backup:app/api-key", "update", ["replace"], "generate"),
        ("local:app/api-key", "update", ["replace"], "generate"),
        ("mirror:app/api-key", "update", ["replace"], "generate"),
        ("mirror:app/api-key-copy", "update", ["value"], "derived"),
    ]
    text = cli("plan", "-C", str(stack), "--replace", "app/api-key", env=env)
    assert "(replace)" in text.stdout and "replaced on demand (--replace)" in text.stdout
    markdown = cli("plan", "-C", str(stack), "--replace", "local:app/api-key", "--format", "markdown", env=env)
    assert "| replace |" in markdown.stdout and markdown.stdout.count("app/api-key") >= 4

    applied = cli("apply", "-C", str(stack), "--replace", "app/api-key", "--auto-approve", env=env)
    assert applied.code == 0, applied.output
    after = _values(stack)
    new = after["local:app/api-key"]
    assert new != before["local:app/api-key"]
    assert after["mirror:app/api-key"] == after["backup:app/api-key"] == new  # one value, everywhere
    assert after["mirror:app/api-key-copy"] == new  # the copy holds the new value, not the old one
    assert after["local:app/untouched"] == before["local:app/untouched"]
    assert _changes(cli("plan", "-C", str(stack), "--format", "json", env=env)) == []  # one apply was enough

    audit = (stack / ".cloudsync" / "audit.jsonl").read_text()
    assert '"replace"' in audit
    outputs = [planned.output, text.output, markdown.output, applied.output]
    assert_no_canary(canary, *outputs, audit)
    assert_no_canary(_raw(stack, "local", "app/api-key"), *outputs, audit)  # nor the new generated value
    assert files_containing(stack, canary, skip=lambda p: p.suffix == ".db") == []


def _raw(stack: Path, store: str, name: str) -> str:
    db = LocalStore(stack / ".cloudsync" / f"{store}.db")
    try:
        return db.get_value(name).reveal_text()
    finally:
        db.close()


def test_replacing_a_ca_reissues_its_certificates_in_order_in_the_same_apply(
        stack: Path, cli: Callable[..., CliResult], canary: str) -> None:
    env = {"SMTP_PASSWORD": canary}
    old_ca = certs.parse_bundle(_raw(stack, "local", "mtls/ca").encode()).certificate
    planned = cli("plan", "-C", str(stack), "--replace", "mtls/ca", "--grace", "0", "--format", "json", env=env)
    assert _changes(planned) == [
        ("local:mtls/ca", "update", ["replace"], "generate"),
        ("local:mtls/client", "update", ["rotation"], "generate"),
        ("mirror:mtls/ca-cert", "update", ["value"], "derived"),
    ]
    # The grace goes with everything that follows the replaced CA (their old versions are retired alike).
    assert all(any("stays usable for no time (--grace)" in d for d in c["details"])
               for c in json.loads(planned.stdout)["changes"])
    applied = cli("apply", "-C", str(stack), "--replace", "mtls/ca", "--grace", "0", "--auto-approve", env=env)
    assert applied.code == 0, applied.output
    # Trust first, then the leaf: the public CA certificate is written before the client certificate.
    order = [line.split()[-1] for line in applied.stderr.splitlines() if line.strip().startswith("ok")]
    assert order.index("local:mtls/ca") < order.index("mirror:mtls/ca-cert") < order.index("local:mtls/client")
    new_ca = certs.parse_bundle(_raw(stack, "local", "mtls/ca").encode()).certificate
    client = certs.parse_bundle(_raw(stack, "local", "mtls/client").encode()).certificate
    assert new_ca.fingerprint(new_ca.signature_hash_algorithm) != old_ca.fingerprint(old_ca.signature_hash_algorithm)  # type: ignore[arg-type]
    client.verify_directly_issued_by(new_ca)  # signed by the new CA, not the replaced one
    published = x509.load_pem_x509_certificates(_raw(stack, "mirror", "mtls/ca-cert").encode())
    assert published == [new_ca]
    assert _changes(cli("plan", "-C", str(stack), "--format", "json", env=env)) == []


REFUSALS = [
    ("app/smtp-password", "its value comes from the environment variable SMTP_PASSWORD",
     "set SMTP_PASSWORD to the new credential"),
    ("app/api-key-copy", "it copies local:app/api-key", "--replace app/api-key"),
    ("mtls/ca-cert", "it is the public half of mtls/ca", "--replace mtls/ca"),
    ("app/rotated-elsewhere", "an external system rotates it", "at its issuer or rotator"),
    ("app/api-kye", "no declared secret matches", "did you mean 'app/api-key'?"),
    ("lcoal:app/api-key", "no target 'lcoal'", "did you mean 'local'?"),
    ("app/nothing-*", "no declared secret matches", "declared secrets:"),
]


def test_replace_refuses_what_cloudsync_does_not_make_and_names_unknown_ones(
        stack: Path, cli: Callable[..., CliResult], canary: str) -> None:
    before = _values(stack)
    env = {"SMTP_PASSWORD": canary}
    for selector, message, hint in REFUSALS:
        result = cli("plan", "-C", str(stack), "--replace", "app/api-key", "--replace", selector, env=env)
        assert result.code == 1, result.output
        assert message in result.stderr and hint in result.stderr, result.stderr
        assert "Traceback" not in result.output
        assert_no_canary(canary, result.output)
    # Every problem at once, and an apply refused whole: not even the valid selector is applied.
    everything = [arg for selector, _, _ in REFUSALS for arg in ("--replace", selector)]
    result = cli("apply", "-C", str(stack), "--auto-approve", "--replace", "app/api-key", *everything, env=env)
    assert result.code == 1
    assert all(message in result.stderr for _, message, _ in REFUSALS), result.stderr
    assert _values(stack) == before  # nothing half-done


def test_replace_refuses_a_sops_value_naming_the_file_to_edit(write_stack: Callable[..., Path],
                                                              cli: Callable[..., CliResult]) -> None:
    root = write_stack(STACK)
    result = cli("plan", "-C", str(root), "--replace", "app/vendor-token")
    assert result.code == 1
    assert "cloudsync.yaml:" in result.stderr  # at the declaration
    assert "its value comes from the sops file secrets/vendor.enc.yaml (key token)" in result.stderr
    assert "sops edit secrets/vendor.enc.yaml" in result.stderr


def test_a_glob_takes_the_generated_secrets_it_matches(stack: Path, cli: Callable[..., CliResult],
                                                       canary: str) -> None:
    planned = cli("plan", "-C", str(stack), "--replace", "app/*", "--format", "json", env={"SMTP_PASSWORD": canary})
    replaced = {c[0] for c in _changes(planned) if "replace" in c[2]}
    assert replaced == {"local:app/api-key", "mirror:app/api-key", "backup:app/api-key", "local:app/untouched"}


def test_replace_of_a_secret_partly_outside_the_plan_is_refused(stack: Path, cli: Callable[..., CliResult],
                                                                canary: str) -> None:
    result = cli("plan", "-C", str(stack), "--replace", "app/api-key", "--target", "local",
                 env={"SMTP_PASSWORD": canary})
    assert result.code == 1
    assert "it also lives in mirror, backup, which this plan leaves out" in result.stderr


def test_a_saved_replacement_is_carried_and_refused_when_stale(stack: Path, cli: Callable[..., CliResult],
                                                                canary: str) -> None:
    env = {"SMTP_PASSWORD": canary}
    before = _values(stack)
    plan_file = stack / "replace.plan"
    made = cli("plan", "-C", str(stack), "--replace", "app/api-key", "--grace", "0", "--out", str(plan_file), env=env)
    assert made.code == 0, made.output
    shown = cli("show", "-C", str(stack), str(plan_file), "--format", "json")
    assert [c["reasons"] for c in json.loads(shown.stdout)["changes"] if c["secret"] == "app/api-key"] == [
        ["replace"]] * 3
    saved = json.loads(plan_file.read_text())["body"]
    assert {c["value"].get("grace_seconds") for c in saved["changes"] if c["secret"] == "app/api-key"} == {0}
    assert_no_canary(canary, plan_file.read_text(), made.output, shown.output)
    assert cli("apply", "-C", str(stack), str(plan_file), "--replace", "app/api-key").code == 1  # the file says it

    # Someone else replaced it meanwhile: the saved plan describes a world that is gone.
    other = cli("apply", "-C", str(stack), "--replace", "app/api-key", "--auto-approve", env=env)
    assert other.code == 0, other.output
    between = _values(stack)
    stale = cli("apply", "-C", str(stack), str(plan_file), env=env)
    assert stale.code == 1 and "is stale" in stale.stderr and "local:app/api-key changed" in stale.stderr
    assert _values(stack) == between  # refused whole

    fresh_file = stack / "fresh.plan"
    assert cli("plan", "-C", str(stack), "--replace", "app/api-key", "--out", str(fresh_file), env=env).code == 0
    applied = cli("apply", "-C", str(stack), str(fresh_file), env=env)
    assert applied.code == 0, applied.output
    after = _values(stack)
    assert after["local:app/api-key"] not in (before["local:app/api-key"], between["local:app/api-key"])
    assert after["mirror:app/api-key-copy"] == after["local:app/api-key"]


def test_grace_needs_replace_and_a_duration(stack: Path, cli: Callable[..., CliResult], canary: str) -> None:
    env = {"SMTP_PASSWORD": canary}
    alone = cli("plan", "-C", str(stack), "--grace", "1d", env=env)
    assert alone.code == 1 and "--grace goes with --replace" in alone.stderr
    bad = cli("plan", "-C", str(stack), "--replace", "app/api-key", "--grace", "soon", env=env)
    assert bad.code == 1 and "--grace: bad duration" in bad.stderr and "Traceback" not in bad.output
    day = cli("plan", "-C", str(stack), "--replace", "app/api-key", "--grace", "1d", "--format", "json", env=env)
    assert any("stays usable for 1d (--grace)" in d for c in json.loads(day.stdout)["changes"] for d in c["details"])

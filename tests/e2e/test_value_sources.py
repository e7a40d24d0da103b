"""Every value source end to end: the installed ``cloudsync`` against local targets.

Keys are generated per test; HOME is the test's own folder, so neither the developer's
age keys nor their SSH keys take part. Every output and every file of the stack is
checked for the canary (the local stores are encrypted at rest, SOPS files too).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cloudsync.providers.base import WRITTEN_LABEL, now
from cloudsync.providers.local import LocalStore
from cloudsync.values.secret import SecretValue
from tests.conftest import CliResult, assert_no_canary, files_containing
from tests.values import conftest as value_fixtures
from tests.values.conftest import AgeKey

Cli = Callable[..., CliResult]

# The value-source unit tests' fixtures: per-test age keys and the real sops binary.
make_age_key = value_fixtures.make_age_key
age_key = value_fixtures.age_key
sops_bin = value_fixtures.sops_bin
sops_encrypt = value_fixtures.sops_encrypt
sops_decrypt = value_fixtures.sops_decrypt


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "home"
    (folder / ".config").mkdir(parents=True)
    return {"HOME": str(folder), "XDG_CONFIG_HOME": str(folder / ".config")}


def run(cli: Cli, stack: Path, canary: str, *args: str, env: dict[str, str], code: int | None = 0) -> CliResult:
    result = cli(*args, "-C", str(stack), env=env)
    assert_no_canary(canary, result.stdout, result.stderr)
    if code is not None:
        assert result.code == code, result.output
    return result


def plan_changes(cli: Cli, stack: Path, canary: str, env: dict[str, str], *extra: str) -> list[tuple[str, str, list[str]]]:
    data = json.loads(run(cli, stack, canary, "plan", "--format", "json", *extra, env=env).stdout)
    return [(c["address"], c["action"], c["reasons"]) for c in data["changes"]]


def store(stack: Path, name: str = "local") -> LocalStore:
    return LocalStore(stack / ".cloudsync" / f"{name}.db")


def backdate(stack: Path, secret: str, days: int, db: str = "local") -> None:
    """Pretend cloudsync wrote the secret's value ``days`` ago (its metadata only)."""
    target = store(stack, db)
    row = next(r for r in target.rows() if r["name"] == secret)
    labels = json.loads(row["labels"])
    labels[WRITTEN_LABEL] = str(int((now() - timedelta(days=days)).timestamp()))
    target.update(secret, labels=labels)


# --- sops -------------------------------------------------------------------------------------

SOPS_STACK = """\
version: 1
stack: shop
defaults: {labels: {owner: team-shop}, rotation: 90d}   # what the built-in policies ask of every secret
targets:
  local: {provider: local}
secrets:
  - name: shop/stripe-key
    targets: [local]
    labels: {env: dev}
    value: {sops: secrets/values.enc.yaml, key: stripe.api_key}
  - name: shop/db-password
    targets: [local]
    value: {sops: secrets/values.enc.yaml, key: '["db"]["password"]'}
  - name: shop/webhook
    targets: [local]
    value: {sops: secrets/hooks.enc.json, key: hooks.0.secret}
"""


def test_sops_values_decrypt_natively_and_match_sops_decrypt(
        cli: Cli, write_stack: Callable[..., Path], canary: str, age_key: AgeKey, home: dict[str, str],
        sops_encrypt: Callable[..., Path], sops_decrypt: Callable[..., subprocess.CompletedProcess[bytes]]) -> None:
    stack = write_stack(SOPS_STACK)
    yaml_file = sops_encrypt(f"stripe:\n  api_key: {canary}-stripe\ndb:\n  password: '{canary}: db'\n",
                             [age_key.recipient], name="values.enc.yaml", folder=stack / "secrets")
    sops_encrypt(json.dumps({"hooks": [{"secret": f"{canary}-hook"}]}), [age_key.recipient], name="hooks.enc.json",
                 folder=stack / "secrets")
    env = {**home, "SOPS_AGE_KEY_FILE": str(age_key.file)}

    assert plan_changes(cli, stack, canary, env) == [
        ("local:shop/db-password", "create", ["value"]), ("local:shop/stripe-key", "create", ["value"]),
        ("local:shop/webhook", "create", ["value"])]
    run(cli, stack, canary, "apply", "--auto-approve", env=env)
    local = store(stack)
    for name, key in (("shop/stripe-key", '["stripe"]["api_key"]'), ("shop/db-password", '["db"]["password"]')):
        assert local.get_value(name).reveal() == sops_decrypt(yaml_file, "--extract", key, key_file=age_key.file).stdout
    assert local.get_value("shop/webhook").reveal_text() == f"{canary}-hook"
    assert plan_changes(cli, stack, canary, env) == []

    # A new value in the file (re-encrypted by sops) is a value update of exactly that secret.
    sops_encrypt(f"stripe:\n  api_key: {canary}-rotated\ndb:\n  password: '{canary}: db'\n",
                 [age_key.recipient], name="values.enc.yaml", folder=stack / "secrets")
    assert plan_changes(cli, stack, canary, env) == [("local:shop/stripe-key", "update", ["value"])]
    assert files_containing(stack, canary) == []


def test_sops_problems_are_diagnostics_at_the_declaration(
        cli: Cli, write_stack: Callable[..., Path], canary: str, make_age_key: Callable[[str], AgeKey],
        home: dict[str, str], sops_encrypt: Callable[..., Path]) -> None:
    owner, stranger = make_age_key("owner"), make_age_key("stranger")
    stack = write_stack(SOPS_STACK.replace("hooks.0.secret", "hooks.0.missing"))
    path = sops_encrypt(f"stripe:\n  api_key: {canary}\ndb:\n  password: x\n  user: y\n", [owner.recipient],
                        name="values.enc.yaml", folder=stack / "secrets")
    sops_encrypt(json.dumps({"hooks": [{"secret": canary}]}), [owner.recipient], name="hooks.enc.json",
                 folder=stack / "secrets")

    wrong = run(cli, stack, canary, "plan", env={**home, "SOPS_AGE_KEY_FILE": str(stranger.file)}, code=1)
    assert f"cloudsync.yaml:10:19: error: sops file secrets/values.enc.yaml: none of the age identities found opens " \
           f"it (recipients: {owner.recipient}; looked in " in wrong.stderr
    assert "(value of secret 'shop/stripe-key')" in wrong.stderr and stranger.identity not in wrong.stderr

    ok_key = {**home, "SOPS_AGE_KEY_FILE": str(owner.file)}
    missing = run(cli, stack, canary, "plan", env=ok_key, code=1)
    assert ("cloudsync.yaml:16:48: error: sops file secrets/hooks.enc.json has no 'hooks.0.missing' "
            "(key 'hooks.0.missing' of secret 'shop/webhook') (hint: at that level the file has keys: secret)") in missing.stderr

    text = (stack / "cloudsync.yaml").read_text()
    (stack / "cloudsync.yaml").write_text(text.replace("key: '[\"db\"][\"password\"]'", "key: db"))
    path.write_text(path.read_text().replace("    user: ENC[", "    user2: ENC["))  # renamed by hand: MAC breaks
    tampered = run(cli, stack, canary, "plan", env=ok_key, code=1)
    assert "sops file secrets/values.enc.yaml: the value at db.user2 fails authentication: the file was changed " \
           "after sops encrypted it" in tampered.stderr
    assert files_containing(stack, canary) == []


# --- metadata-only planning ----------------------------------------------------------------

META_STACK = """\
version: 1
stack: shop
defaults: {labels: {owner: team-shop}, rotation: 90d}   # what the built-in policies ask of every secret
targets:
  local: {provider: local}
principals:
  api: {}
  worker: {}
secrets:
  - name: shop/stripe-key
    targets: [local]
    labels: {env: dev}
    value: {sops: secrets/values.enc.yaml, key: stripe.api_key}
  - name: shop/db-password
    targets: [local]
    value: {env: SHOP_DB_PASSWORD}
    readers: [api]
  - name: shop/session-key
    targets: [local]
    value: {generate: {length: 40}}
  - name: shop/gone
    targets: [local]
    value: {env: SHOP_DB_PASSWORD}
"""


def test_a_metadata_only_plan_needs_no_key_and_reads_no_value(
        cli: Cli, write_stack: Callable[..., Path], canary: str, age_key: AgeKey, home: dict[str, str],
        sops_encrypt: Callable[..., Path]) -> None:
    stack = write_stack(META_STACK)
    sops_encrypt(f"stripe:\n  api_key: {canary}\n", [age_key.recipient], name="values.enc.yaml",
                 folder=stack / "secrets")
    full = {**home, "SOPS_AGE_KEY_FILE": str(age_key.file), "SHOP_DB_PASSWORD": canary + "-db"}
    run(cli, stack, canary, "apply", "--auto-approve", env=full)

    # Edit everything but values; then take away every key: no age key, no environment
    # variable, and not even the local store's key (so no value, and no fingerprint key, can
    # be read).
    text = (stack / "cloudsync.yaml").read_text()
    text = text.replace("labels: {env: dev}", "labels: {env: staging}").replace("readers: [api]", "readers: [api, worker]")
    text = text.split("  - name: shop/gone")[0] + "  - name: shop/new\n    targets: [local]\n    value: {env: NEW}\n" \
        "    expires: 30d\n"
    (stack / "cloudsync.yaml").write_text(text)
    (stack / ".cloudsync" / "local.db.key").rename(stack / "store.key.away")

    data = json.loads(run(cli, stack, canary, "plan", "--metadata-only", "--format", "json", env=home).stdout)
    got = {c["address"]: (c["action"], c["reasons"], c.get("value", {}).get("mode")) for c in data["changes"]}
    assert got == {
        "local:shop/db-password": ("update", ["access"], "unknown"),
        "local:shop/gone": ("delete", [], None),
        "local:shop/new": ("create", ["value", "expiry"], "unknown"),
        "local:shop/stripe-key": ("update", ["labels"], "unknown"),
    }
    assert data["summary"] == {"create": 1, "update": 2, "delete": 1, "restore": 0, "unchanged": 1}
    # The same plan with values needs what the metadata-only one did without.
    assert run(cli, stack, canary, "plan", env=home, code=1).stderr.count("error:") >= 2
    assert files_containing(stack, canary) == []


# --- from: one source of truth, fanned out ---------------------------------------------------

FROM_STACK = """\
version: 1
stack: shop
defaults: {labels: {owner: team-shop}, rotation: 90d}   # what the built-in policies ask of every secret
targets:
  vendor: {provider: local, path: .cloudsync/vendor.db}
  east: {provider: local, path: .cloudsync/east.db}
  west: {provider: local, path: .cloudsync/west.db}
secrets:
  - name: shop/upstream-token
    targets: [east, west]
    value: {from: {target: vendor, name: vendor/token}}
"""


def test_from_syncs_one_source_to_every_target_and_follows_its_changes(
        cli: Cli, write_stack: Callable[..., Path], canary: str, home: dict[str, str]) -> None:
    stack = write_stack(FROM_STACK)
    vendor = store(stack, "vendor")
    vendor.put_value("vendor/token", SecretValue(canary))  # written by another team's tooling
    run(cli, stack, canary, "apply", "--auto-approve", env=home)
    assert [store(stack, t).get_value("shop/upstream-token").reveal_text() for t in ("east", "west")] == [canary] * 2
    assert plan_changes(cli, stack, canary, home) == []

    vendor.put_value("vendor/token", SecretValue(canary + "-v2"))
    assert plan_changes(cli, stack, canary, home) == [("east:shop/upstream-token", "update", ["value"]),
                                                      ("west:shop/upstream-token", "update", ["value"])]
    run(cli, stack, canary, "apply", "--auto-approve", env=home)
    assert {store(stack, t).get_value("shop/upstream-token").reveal_text() for t in ("east", "west")} == {canary + "-v2"}
    assert files_containing(stack, canary) == []


def test_a_from_cycle_is_a_validation_error(cli: Cli, write_stack: Callable[..., Path], canary: str,
                                            home: dict[str, str]) -> None:
    stack = write_stack(FROM_STACK + """\
  - name: vendor/token
    targets: [vendor]
    value: {from: {target: west, name: shop/upstream-token}}
""")
    result = run(cli, stack, canary, "validate", env=home, code=1)
    assert "cloudsync.yaml:11:19: error: the values of these secrets are derived from each other in a cycle: " \
           "shop/upstream-token (" in result.stderr


# --- file ----------------------------------------------------------------------------------------

FILE_STACK = """\
version: 1
stack: shop
defaults: {labels: {owner: team-shop}, rotation: 90d}   # what the built-in policies ask of every secret
targets:
  local: {provider: local}
secrets:
  - name: shop/token
    targets: [local]
    value: {file: out/token.txt}
"""


def test_file_values_and_their_problems(cli: Cli, write_stack: Callable[..., Path], canary: str,
                                        home: dict[str, str]) -> None:
    stack = write_stack(FILE_STACK)
    missing = run(cli, stack, canary, "plan", env=home, code=1)
    assert "cloudsync.yaml:9:19: error: cannot read value file out/token.txt: No such file or directory " \
           "(hint: the path is relative to the stack folder)" in missing.stderr
    (stack / "out").mkdir()
    (stack / "out" / "token.txt").write_bytes(b"")
    assert "cloudsync.yaml:9:19: error: value file out/token.txt is empty" in run(
        cli, stack, canary, "plan", env=home, code=1).stderr
    (stack / "out" / "token.txt").write_bytes(canary.encode() + b"\n")
    run(cli, stack, canary, "apply", "--auto-approve", env=home)
    assert store(stack).get_value("shop/token").reveal() == canary.encode() + b"\n"  # bytes as they are
    (stack / "out" / "token.txt").unlink()  # the pipeline's own file, not kept
    assert files_containing(stack, canary) == []


# --- generated key material -------------------------------------------------------------------

KEYS_STACK = """\
version: 1
stack: shop
defaults: {labels: {owner: team-shop}, rotation: 90d}   # what the built-in policies ask of every secret
targets:
  local: {provider: local}
  mirror: {provider: local, path: .cloudsync/mirror.db}
secrets:
  - name: shop/admin-password
    targets: [local]
    value: {generate: {length: 32, charset: printable, require: [upper, lower, digit, symbol], exclude: "'\\\\"}}
  - name: shop/deploy-key
    targets: [local]
    value: {generate: {type: ed25519, format: openssh}}
  - name: shop/deploy-key-pub
    targets: [local, mirror]
    value: {public_key_of: {secret: shop/deploy-key, format: openssh}}
  - name: shop/signing-key
    targets: [local]
    value: {generate: {type: rsa, bits: 2048}}
  - name: shop/signing-key-pub
    targets: [mirror]
    value: {public_key_of: shop/signing-key}
"""


def test_keys_are_generated_and_their_public_halves_published(
        cli: Cli, write_stack: Callable[..., Path], canary: str, home: dict[str, str]) -> None:
    stack = write_stack(KEYS_STACK)
    run(cli, stack, canary, "apply", "--auto-approve", env=home)
    # The public halves are derived from the keys this same apply writes: one apply is enough.
    assert plan_changes(cli, stack, canary, home) == []
    local, mirror = store(stack), store(stack, "mirror")
    password = local.get_value("shop/admin-password").reveal_text()
    assert len(password) == 32 and "'" not in password and "\\" not in password
    assert any(c.isupper() for c in password) and any(c.islower() for c in password)
    assert any(c.isdigit() for c in password) and any(not c.isalnum() for c in password)

    deploy = serialization.load_ssh_private_key(local.get_value("shop/deploy-key").reveal(), None)
    published = local.get_value("shop/deploy-key-pub").reveal()
    assert published == mirror.get_value("shop/deploy-key-pub").reveal()
    assert published.decode().startswith("ssh-ed25519 ")
    assert serialization.load_ssh_public_key(published).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw) == deploy.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    signing = serialization.load_pem_private_key(local.get_value("shop/signing-key").reveal(), None)
    assert serialization.load_pem_public_key(mirror.get_value("shop/signing-key-pub").reveal()) == signing.public_key()

    # A new key (new settings) regenerates it, and its public half follows in the same apply.
    (stack / "cloudsync.yaml").write_text(KEYS_STACK.replace("{type: rsa, bits: 2048}", "{type: ecdsa}"))
    assert plan_changes(cli, stack, canary, home) == [("local:shop/signing-key", "update", ["value"]),
                                                      ("mirror:shop/signing-key-pub", "update", ["value"])]
    run(cli, stack, canary, "apply", "--auto-approve", env=home)
    assert plan_changes(cli, stack, canary, home) == []


# --- certificates ---------------------------------------------------------------------------

CERT_STACK = """\
version: 1
stack: shop
defaults: {labels: {owner: team-shop}, rotation: 90d}   # what the built-in policies ask of every secret
targets:
  local: {provider: local}
secrets:
  - name: shop/ca
    targets: [local]
    value: {generate: {type: ca, common_name: Shop internal CA, days: 365}}
  - name: shop/ca-cert
    targets: [local]
    value: {public_key_of: shop/ca}
  - name: shop/worker-cert
    targets: [local]
    value: {generate: {type: certificate, ca: shop/ca, common_name: worker, days: 60}}
  - name: shop/self-signed
    targets: [local]
    value: {generate: {type: certificate, common_name: legacy-client, days: 90}}
"""


def test_a_self_signed_client_certificate_is_renewed_before_it_expires(
        cli: Cli, write_stack: Callable[..., Path], canary: str, home: dict[str, str]) -> None:
    stack = write_stack(CERT_STACK.split("  - name: shop/ca\n")[0] + "  - name: shop/self-signed\n"
                        + CERT_STACK.split("  - name: shop/self-signed\n")[1])
    run(cli, stack, canary, "apply", "--auto-approve", env=home)
    first = store(stack).get_value("shop/self-signed").reveal()
    cert = x509.load_pem_x509_certificate(first)
    cert.verify_directly_issued_by(cert)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=90, minutes=5)
    assert plan_changes(cli, stack, canary, home) == []

    backdate(stack, "shop/self-signed", 61)  # past two thirds of 90 days
    result = run(cli, stack, canary, "plan", env=home)
    assert "~ update  local:shop/self-signed  (rotation)" in result.stdout
    assert "renewed once two thirds of its 90d lifetime have passed" in result.stdout
    run(cli, stack, canary, "apply", "--auto-approve", env=home)
    assert store(stack).get_value("shop/self-signed").reveal() != first


def test_a_client_certificate_is_signed_by_its_declared_ca(
        cli: Cli, write_stack: Callable[..., Path], canary: str, home: dict[str, str]) -> None:
    stack = write_stack(CERT_STACK)
    result = run(cli, stack, canary, "apply", "--auto-approve", env=home, code=None)
    assert result.code == 0, result.output
    if plan_changes(cli, stack, canary, home):  # the published CA certificate waits for the CA
        run(cli, stack, canary, "apply", "--auto-approve", env=home)
    assert plan_changes(cli, stack, canary, home) == []
    local = store(stack)
    chain = x509.load_pem_x509_certificates(local.get_value("shop/worker-cert").reveal())
    [ca] = x509.load_pem_x509_certificates(local.get_value("shop/ca-cert").reveal())
    chain[0].verify_directly_issued_by(ca)
    assert chain[1] == ca and b"PRIVATE" not in local.get_value("shop/ca-cert").reveal()

    # A renewed CA (new settings) reissues the certificates it signs.
    (stack / "cloudsync.yaml").write_text(CERT_STACK.replace("days: 365", "days: 730"))
    changes = plan_changes(cli, stack, canary, home)
    assert ("local:shop/ca", "update", ["value"]) in changes and ("local:shop/worker-cert", "update", ["value"]) in changes
    run(cli, stack, canary, "apply", "--auto-approve", env=home)
    for _ in range(2):
        if plan_changes(cli, stack, canary, home):
            run(cli, stack, canary, "apply", "--auto-approve", env=home)
    chain = x509.load_pem_x509_certificates(local.get_value("shop/worker-cert").reveal())
    [ca] = x509.load_pem_x509_certificates(local.get_value("shop/ca-cert").reveal())
    chain[0].verify_directly_issued_by(ca)


# --- rotation owned by another system ------------------------------------------------------

EXTERNAL_STACK = """\
version: 1
stack: shop
defaults: {labels: {owner: team-shop}, rotation: 90d}   # what the built-in policies ask of every secret
targets:
  local: {provider: local}
secrets:
  - name: shop/db-password
    targets: [local]
    value: {generate: {length: 32}}
    rotation: {every: 30d, by: external}
  - name: shop/api-key
    targets: [local]
    value: {generate: {length: 32}}
    rotation: 30d
"""


def test_an_externally_rotated_value_is_left_alone_and_a_late_rotation_is_reported(
        cli: Cli, write_stack: Callable[..., Path], canary: str, home: dict[str, str]) -> None:
    stack = write_stack(EXTERNAL_STACK)
    run(cli, stack, canary, "apply", "--auto-approve", env=home)
    local = store(stack)
    for name in ("shop/db-password", "shop/api-key"):  # a rotation job writes new versions of both
        local.put_value(name, SecretValue(canary))
    assert plan_changes(cli, stack, canary, home) == [("local:shop/api-key", "update", ["value"])]
    drift = json.loads(run(cli, stack, canary, "drift", "--format", "json", env=home, code=2).stdout)
    assert [(d["address"], d["kind"]) for d in drift["drifted"]] == [("local:shop/api-key", "value")]
    run(cli, stack, canary, "apply", "--auto-approve", env=home)

    backdate(stack, "shop/db-password", 45)
    local.put_value("shop/db-password", SecretValue(canary + "-2"))  # rotated again...
    assert plan_changes(cli, stack, canary, home) == []
    local.update("shop/db-password", labels={**json.loads(next(
        r for r in local.rows() if r["name"] == "shop/db-password")["labels"]), "cloudsync-version": "3"})
    # ...and now the version cloudsync knows is current but was written 45 days ago: overdue.
    late = run(cli, stack, canary, "plan", "--detailed-exitcode", env=home)
    assert "warning: local:shop/db-password: rotation is overdue: the value was last changed" in late.stderr
    assert "rotates it every 30d" in late.stderr and "No changes." in late.stdout
    assert files_containing(stack, canary) == []


"""Generated values: the password guarantees (properties), key material, certificates, spec digests."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cloudsync.config.models import CHARACTER_CLASSES, CHARSETS, GenerateSpec
from cloudsync.values import certs, passwords
from cloudsync.values.generate import IssuerError, generate_value, renew_after, spec_digest
from cloudsync.values.keys import load_private_key
from cloudsync.values.secret import SecretValue
from cloudsync.values.sources import public_half

PRINTABLE = passwords.ALPHABETS["printable"]


# --- passwords: the guarantees hold for every valid setting ---------------------------------


@settings(max_examples=300, deadline=None)
@given(length=st.integers(8, 80), charset=st.sampled_from(CHARSETS),
       require=st.lists(st.sampled_from(CHARACTER_CLASSES), unique=True),
       exclude=st.text(alphabet=PRINTABLE, max_size=40))
def test_every_password_meets_its_settings(length: int, charset: str, require: list[str], exclude: str) -> None:
    try:
        spec = GenerateSpec(length=length, charset=charset, require=require, exclude=exclude)  # type: ignore[arg-type]
    except ValidationError:
        chars = passwords.alphabet(charset, exclude)
        # The model refuses exactly the unsatisfiable settings.
        assert len(chars) < 2 or any(not passwords.class_members(r, chars) for r in require)
        return
    value = generate_value(spec).reveal_text()
    allowed = set(passwords.alphabet(charset, exclude))
    assert len(value) == length
    assert set(value) <= allowed
    assert not set(value) & set(exclude)
    for name in require:
        assert any(c in passwords.class_members(name, "".join(allowed)) for c in value), name


@settings(max_examples=200, deadline=None)
@given(length=st.integers(8, 40), require=st.lists(st.sampled_from(CHARACTER_CLASSES), unique=True, min_size=1),
       keep=st.sampled_from(["upper", "lower", "digit", "symbol"]))
def test_the_fallback_placement_also_meets_every_class(length: int, require: list[str], keep: str) -> None:
    # Starve one class down to a single character: the case rejection sampling finds hardest.
    chars = "".join(c for c in PRINTABLE if passwords.class_members(keep, c) == "" or c in "A7a!")
    assume(all(passwords.class_members(r, chars) for r in require))
    value = passwords._placed(length, chars, require)
    assert len(value) == length and set(value) <= set(chars)
    assert passwords.meets(value, chars, require)


def test_passwords_are_not_repeated() -> None:
    spec = GenerateSpec(length=16)
    assert len({generate_value(spec).reveal() for _ in range(200)}) == 200


@pytest.mark.parametrize(("settings_", "message"), [
    ({"charset": "hex", "require": ["upper"]}, "has no upper characters"),
    ({"charset": "alphanumeric", "require": ["symbol"]}, "has no symbol characters"),
    ({"charset": "hex", "exclude": "0123456789abcde"}, "fewer than 2 characters"),
    ({"type": "ed25519", "length": 40}, "'length' cannot be used with type ed25519"),
    ({"type": "rsa", "bits": 1024}, "Input should be 2048, 3072 or 4096"),
    ({"type": "ecdsa", "bits": 2048}, "'bits' cannot be used with type ecdsa"),
    ({"type": "ca", "common_name": "x", "key_type": "ecdsa", "bits": 2048}, "'bits' goes with rsa keys"),
    ({"type": "ca"}, "a ca needs common_name"),
    ({"type": "certificate", "common_name": "x", "format": "openssh"}, "format openssh does not apply"),
    ({"type": "password", "ca": "x/ca"}, "'ca' cannot be used with type password"),
])
def test_settings_that_cannot_work_are_refused(settings_: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        GenerateSpec.model_validate(settings_)
    assert message in str(raised.value)


# --- key material ------------------------------------------------------------------------------


@pytest.mark.parametrize(("settings_", "kind"), [
    ({"type": "ed25519"}, ed25519.Ed25519PrivateKey),
    ({"type": "rsa", "bits": 2048}, rsa.RSAPrivateKey),
    ({"type": "ecdsa"}, ec.EllipticCurvePrivateKey),
    ({"type": "ecdsa", "curve": "p384", "format": "openssh"}, ec.EllipticCurvePrivateKey),
    ({"type": "ed25519", "format": "openssh"}, ed25519.Ed25519PrivateKey),
])
def test_keys_parse_and_their_public_halves_match(settings_: dict[str, object], kind: type) -> None:
    value = generate_value(GenerateSpec.model_validate(settings_)).reveal()
    fmt = settings_.get("format", "pem")
    # The PEM headers are spelled in two parts so secret scanners do not mistake this line for a key.
    header = b"OPENSSH PRIVATE" if fmt == "openssh" else b"PRIVATE"
    assert value.startswith(b"-----BEGIN " + header + b" KEY-----")
    key = load_private_key(value)
    assert isinstance(key, kind)
    pem = serialization.load_pem_public_key(public_half(value, "pem"))
    ssh = serialization.load_ssh_public_key(public_half(value, "openssh"))
    expected = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for public in (pem, ssh):
        assert public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == expected
    assert b"PRIVATE" not in public_half(value, None)


def test_rsa_keys_default_to_3072_bits() -> None:
    key = load_private_key(generate_value(GenerateSpec(type="rsa")).reveal())
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 3072


# --- certificates ----------------------------------------------------------------------------


def _verify_client(leaf_pem: bytes, ca_pem: bytes) -> x509.Certificate:
    chain = x509.load_pem_x509_certificates(leaf_pem)
    roots = x509.load_pem_x509_certificates(ca_pem)[:1]
    if isinstance(roots[0].public_key(), ed25519.Ed25519PublicKey):
        # The Web PKI policy of cryptography's verifier does not admit Ed25519 CAs (TLS stacks
        # like OpenSSL and Go do); check the signature and the issuer link directly.
        chain[0].verify_directly_issued_by(roots[0])
    else:
        PolicyBuilder().store(Store(roots)).build_client_verifier().verify(chain[0], chain[1:])
    return chain[0]


@pytest.mark.parametrize("key_type", ["ecdsa", "ed25519", "rsa"])
def test_a_client_certificate_chains_to_its_declared_ca(key_type: str) -> None:
    ca = generate_value(GenerateSpec(type="ca", common_name="Payments CA", key_type=key_type,  # type: ignore[arg-type]
                                     **({"bits": 2048} if key_type == "rsa" else {})))
    spec = GenerateSpec(type="certificate", common_name="payments-api", ca="payments/ca", days=90,
                        dns_names=["payments-api.internal"])
    bundle = generate_value(spec, issuer=ca).reveal()
    leaf = _verify_client(bundle, ca.reveal())
    assert leaf.subject.rfc4514_string() == "CN=payments-api"
    assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH])
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert lifetime == timedelta(days=90) + certs.BACKDATE
    # The bundle holds the leaf, the CA certificate and the leaf's key, and the key matches.
    parsed = certs.parse_bundle(bundle)
    assert parsed.private_key.public_key() == leaf.public_key()
    assert [c.subject.rfc4514_string() for c in parsed.chain] == ["CN=Payments CA"]
    assert public_half(bundle, None).count(b"BEGIN CERTIFICATE") == 2 and b"PRIVATE" not in public_half(bundle, None)


def test_a_certificate_without_a_ca_is_self_signed_and_json_on_request() -> None:
    value = generate_value(GenerateSpec(type="certificate", common_name="svc", usage="both", format="json"))
    doc = json.loads(value.reveal())
    assert doc["ca"] is None
    cert = x509.load_pem_x509_certificate(doc["certificate"].encode())
    cert.verify_directly_issued_by(cert)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]


def test_a_server_certificate_verifies_for_its_dns_name() -> None:
    ca = generate_value(GenerateSpec(type="ca", common_name="CA"))
    bundle = generate_value(GenerateSpec(type="certificate", common_name="api", usage="server", ca="x/ca",
                                         dns_names=["api.internal", "10.0.0.7"]), issuer=ca).reveal()
    chain = x509.load_pem_x509_certificates(bundle)
    verifier = (PolicyBuilder().store(Store(x509.load_pem_x509_certificates(ca.reveal())))
                .build_server_verifier(x509.DNSName("api.internal")))
    verifier.verify(chain[0], chain[1:])


def test_a_certificate_needs_its_cas_value_and_the_ca_must_be_a_ca() -> None:
    spec = GenerateSpec(type="certificate", common_name="c", ca="x/ca")
    with pytest.raises(IssuerError, match="the value of its CA x/ca is needed to sign it"):
        generate_value(spec)
    not_a_ca = generate_value(GenerateSpec(type="certificate", common_name="leaf"))
    with pytest.raises(IssuerError, match="cannot sign certificates: its certificate is not a CA certificate"):
        generate_value(spec, issuer=not_a_ca)
    with pytest.raises(IssuerError, match="does not hold a PEM certificate and its private key") as raised:
        generate_value(spec, issuer=SecretValue("just a password"))
    assert "just a password" not in str(raised.value)


def test_the_issue_time_is_the_validity_start() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    key = ed25519.Ed25519PrivateKey.generate()
    cert = certs.issue(certs.CertificateRequest("x", days=10), key, None, moment)
    assert cert.not_valid_before_utc == moment - certs.BACKDATE
    assert cert.not_valid_after_utc == moment + timedelta(days=10)


# --- spec digests and renewal -------------------------------------------------------------


def test_plain_passwords_keep_the_first_release_digest() -> None:
    # Changing it would regenerate every existing password on upgrade.
    assert spec_digest(GenerateSpec(length=40)) == hashlib.sha256(b"generate:v1:40:alphanumeric").hexdigest()[:12]


@pytest.mark.parametrize("change", [
    {"length": 33}, {"charset": "hex"}, {"require": ["digit"]}, {"exclude": "0O"},
])
def test_every_password_setting_changes_the_digest(change: dict[str, object]) -> None:
    base = GenerateSpec()
    assert spec_digest(base) != spec_digest(base.model_copy(update=change))


def test_certificate_digests_follow_their_settings_and_their_cas() -> None:
    ca1 = GenerateSpec(type="ca", common_name="CA")
    ca2 = GenerateSpec(type="ca", common_name="CA", days=365)
    leaf = GenerateSpec(type="certificate", common_name="c", ca="x/ca")
    digests = {
        spec_digest(leaf, lambda name: ca1),
        spec_digest(leaf, lambda name: ca2),
        spec_digest(leaf.model_copy(update={"days": 30}), lambda name: ca1),
        spec_digest(leaf.model_copy(update={"common_name": "d"}), lambda name: ca1),
        spec_digest(GenerateSpec(type="ed25519")),
        spec_digest(GenerateSpec(type="rsa")),
        spec_digest(GenerateSpec(type="rsa", bits=4096)),
    }
    assert len(digests) == 7
    assert all((len(d) == 12 and d.isalnum() and d.islower()) or d.isdigit() for d in digests)


def test_certificates_renew_after_two_thirds_of_their_lifetime() -> None:
    assert renew_after(GenerateSpec(type="certificate", common_name="c", days=90)) == timedelta(days=60)
    assert renew_after(GenerateSpec(type="ca", common_name="c")) == timedelta(days=3650) * 2 / 3
    assert renew_after(GenerateSpec(type="ed25519")) is None

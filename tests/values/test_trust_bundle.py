"""CA trust bundles as a pure function: which CA certificates a bundle holds at a moment."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta

from cryptography import x509

from cloudsync.config.models import GenerateSpec
from cloudsync.values import certs, trust
from cloudsync.values.generate import generate_value

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _ca(name: str, at: datetime) -> x509.Certificate:
    value = generate_value(GenerateSpec(type="ca", common_name=name, key_type="ed25519"), now=at)
    return certs.parse_bundle(value.reveal()).certificate


def _held(text: bytes) -> list[str]:
    return [c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(text)]


OLD = _ca("old", NOW - timedelta(days=400))
NEW = _ca("new", NOW)


def test_a_new_bundle_holds_the_current_ca() -> None:
    assert _held(trust.bundle("ca", OLD, None, NOW, None)) == ["CN=old"]


def test_a_replaced_ca_stays_for_the_grace_and_the_bundle_says_until_when() -> None:
    before = trust.bundle("ca", OLD, None, NOW - timedelta(days=1), None)
    during = trust.bundle("ca", NEW, before, NOW, timedelta(days=3))
    assert _held(during) == ["CN=new", "CN=old"]
    assert b"trusted until 2026-12-02T12:00:00Z" in during
    ssl.create_default_context(cadata=during.decode())  # what TLS libraries load, explanatory text and all
    # Later plans need no --grace: the bundle remembers; it is stable until then, and one CA after.
    assert trust.bundle("ca", NEW, during, NOW + timedelta(days=2), None) == during
    assert _held(trust.bundle("ca", NEW, during, NOW + timedelta(days=3, seconds=1), None)) == ["CN=new"]


def test_default_and_zero_grace() -> None:
    before = trust.bundle("ca", OLD, None, NOW, None)
    assert _held(trust.bundle("ca", NEW, before, NOW + trust.DEFAULT_GRACE - timedelta(minutes=1), None)) == [
        "CN=new", "CN=old"]
    assert _held(trust.bundle("ca", NEW, before, NOW, timedelta(0))) == ["CN=new"]
    # The plan's moment may precede the CA's creation by a second: zero is still zero.
    assert _held(trust.bundle("ca", NEW, before, NOW - timedelta(seconds=5), timedelta(0))) == ["CN=new"]


def test_an_edited_bundle_cannot_keep_an_old_ca_for_ever_nor_grow_without_bound() -> None:
    before = trust.bundle("ca", OLD, None, NOW, None)
    during = trust.bundle("ca", NEW, before, NOW, timedelta(days=1))
    forever = during.replace(b"trusted until 2026-11-30T12:00:00Z", b"trusted until 9999-01-01T00:00:00Z")
    assert _held(trust.bundle("ca", NEW, forever, NOW + trust.MAX_GRACE + timedelta(days=1), None)) == ["CN=new"]
    many = b"".join(trust.bundle("ca", _ca(f"ca{i}", NOW), None, NOW, None) for i in range(3))
    garbage = b"junk\n-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n" + many * 10
    assert len(_held(trust.bundle("ca", NEW, garbage, NOW, timedelta(days=1)))) <= 1 + trust.MAX_PREVIOUS

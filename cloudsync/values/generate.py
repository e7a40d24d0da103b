"""Generated values: passwords, private keys, CAs and certificates.

What the planner needs to know about a generated value is in its metadata, never in the
value: the *spec digest* (a digest of the non-secret settings, so a changed setting
regenerates it), when it was written, and for certificates the age at which they are
renewed (:func:`renew_after`: two thirds of their lifetime, so a third of it is always
left when a renewal lands).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cloudsync.config.models import GenerateSpec
from cloudsync.values.passwords import generate_password
from cloudsync.values.secret import SecretValue

RENEW_FRACTION = 2 / 3
DEFAULT_DAYS = {"ca": 3650, "certificate": 90}
_MAX_ISSUER_DEPTH = 8


class IssuerError(Exception):
    """A certificate's CA value is missing or is not a CA (the message never holds a value)."""


def key_type_of(spec: GenerateSpec) -> str:
    """The key type a spec generates (certificates default to ECDSA P-256)."""
    if spec.type in ("ca", "certificate"):
        return spec.key_type or "ecdsa"
    return spec.type


def days_of(spec: GenerateSpec) -> int:
    return spec.days or DEFAULT_DAYS[spec.type]


def renew_after(spec: GenerateSpec) -> timedelta | None:
    """How old a certificate may get before it is renewed (None: not a certificate)."""
    if spec.type not in ("ca", "certificate"):
        return None
    return timedelta(days=days_of(spec)) * RENEW_FRACTION


def issuer_of(spec: GenerateSpec) -> str | None:
    """The declared secret whose value signs this one (a certificate's CA)."""
    return spec.ca if spec.type == "certificate" else None


def spec_digest(spec: GenerateSpec, issuer_spec: Callable[[str], GenerateSpec | None] = lambda name: None,
                *, _depth: int = 0) -> str:
    """A 12-hex digest of the settings that determine the value (never of the value).

    Plain passwords keep the digest formula of the first release, so upgrading cloudsync
    does not regenerate every password. A certificate's digest covers its CA's settings
    too: a CA made with other settings is a new CA, and its certificates follow.
    """
    if spec.type == "password" and not spec.require and not spec.exclude:
        return hashlib.sha256(f"generate:v1:{spec.length}:{spec.charset}".encode()).hexdigest()[:12]
    settings = spec.model_dump(mode="json", exclude_defaults=True)
    settings["type"] = spec.type
    issuer = issuer_of(spec)
    if issuer is not None and _depth < _MAX_ISSUER_DEPTH:
        parent = issuer_spec(issuer)
        settings["issuer"] = spec_digest(parent, issuer_spec, _depth=_depth + 1) if parent else None
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"generate:v2:{canonical}".encode()).hexdigest()[:12]


def generate_value(spec: GenerateSpec, *, issuer: SecretValue | None = None,
                   now: datetime | None = None) -> SecretValue:
    """A new value for ``spec``; a certificate with a ``ca`` needs that CA's current value.

    Raises :class:`IssuerError` when the CA's value is needed but not given, or is not a
    CA certificate and its key.
    """
    if spec.type == "password":
        return SecretValue(generate_password(spec.length, spec.charset, spec.require, spec.exclude))
    # Imported here: X.509 support costs start-up time every plan would pay otherwise.
    from cloudsync.values import certs
    from cloudsync.values.keys import new_private_key, private_pem

    key_type = key_type_of(spec)
    key = new_private_key(key_type, bits=spec.bits, curve=spec.curve)
    if spec.type in ("ed25519", "rsa", "ecdsa"):
        return SecretValue(private_pem(key, spec.format or "pem"))
    parent = None
    if issuer_of(spec) is not None:
        if issuer is None:
            raise IssuerError(f"the value of its CA {spec.ca} is needed to sign it")
        try:
            parent = certs.parse_issuer(issuer.reveal())
        except certs.BundleError as exc:
            raise IssuerError(f"the value of {spec.ca} cannot sign certificates: {exc}") from None
    assert spec.common_name is not None  # the model requires it for certificates
    request = certs.CertificateRequest(common_name=spec.common_name, days=days_of(spec), is_ca=spec.type == "ca",
                                       usage=spec.usage or "client", dns_names=tuple(spec.dns_names))
    cert = certs.issue(request, key, parent, now or datetime.now(UTC))
    return SecretValue(certs.bundle_text(cert, key, parent, spec.format or "pem"))

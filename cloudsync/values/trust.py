"""CA trust bundles: the certificates a verifier trusts while a CA is replaced.

``public_key_of: {secret: payments/ca, format: bundle}`` is the CA's current certificate,
then the certificates of the CAs it replaced, each until the end of its grace period. A
client or server that loads the bundle trusts certificates of the old and the new CA
while the leaf certificates are reissued; after the grace, the bundle holds one.

The bundle remembers, in itself, until when each old CA stays: PEM allows explanatory text
before each block (RFC 7468, section 2), and every TLS library skips it. So a later plan
needs no state to know when an old CA leaves the bundle, whatever ``--grace`` the
replacement was given. The bundle is public material: certificates, never a key.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cloudsync.values.certs import BACKDATE

DEFAULT_GRACE = timedelta(days=1)  # a CA replaced without --grace stays trusted this long
MAX_GRACE = timedelta(days=366)  # an edited bundle cannot keep an old CA trusted for ever
MAX_PREVIOUS = 16  # old CAs kept at once (bounds the bundle a hostile value could grow)
_BLOCK = re.compile(rb"((?:[^\n-][^\n]*\n)*)(-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----\n?)", re.S)
_UNTIL = re.compile(rb"trusted until (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")
_STAMP = "%Y-%m-%dT%H:%M:%SZ"


def bundle(name: str, current: x509.Certificate, previous: bytes | None, now: datetime,
           grace: timedelta | None) -> bytes:
    """The trust bundle of CA ``name``: its ``current`` certificate, then the old ones still in their grace.

    ``previous`` is the bundle as the targets hold it now (None: there is none yet). When
    ``current`` is not its first certificate, the CA was replaced: the certificate that was
    first stays trusted until ``grace`` (default :data:`DEFAULT_GRACE`) after ``current``
    was issued; ``--grace 0`` drops it at once.
    """
    issued = current.not_valid_before_utc + BACKDATE
    now = max(now, issued)  # a plan's moment can precede the CA it writes: the grace starts at the CA
    kept: list[tuple[x509.Certificate, datetime]] = []
    for index, (cert, until) in enumerate(_entries(previous or b"")):
        if cert == current or any(cert == k for k, _ in kept):
            continue
        if index == 0 or until is None:  # the CA this one replaces: its grace starts now
            until = issued + (DEFAULT_GRACE if grace is None else grace)
        until = min(until, issued + MAX_GRACE, cert.not_valid_after_utc)
        if until > now and len(kept) < MAX_PREVIOUS:
            kept.append((cert, until))
    text = f"# {name}: current CA certificate\n".encode() + _pem(current)
    for cert, until in kept:
        text += f"# {name}: replaced CA certificate, trusted until {until.strftime(_STAMP)}\n".encode() + _pem(cert)
    return text


def _entries(data: bytes) -> list[tuple[x509.Certificate, datetime | None]]:
    """The certificates of a bundle, each with the end of its grace when the bundle says it."""
    found: list[tuple[x509.Certificate, datetime | None]] = []
    for match in _BLOCK.finditer(data):
        try:
            cert = x509.load_pem_x509_certificate(match.group(2))
        except ValueError:
            continue  # not ours to keep: only certificates that parse are trusted
        stamp = _UNTIL.search(match.group(1))
        until = datetime.strptime(stamp.group(1).decode(), _STAMP).replace(tzinfo=cert.not_valid_after_utc.tzinfo) \
            if stamp else None
        found.append((cert, until))
        if len(found) > MAX_PREVIOUS:
            break
    return found


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)

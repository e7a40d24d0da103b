"""X.509 certificates for mTLS: a CA, and certificates it signs (or self-signed ones).

A certificate secret's value bundles everything its holder needs, in PEM (the
certificate, then the CA certificate when it has an issuer, then the PKCS#8 private key)
or as JSON (``{"certificate", "ca", "private_key"}``). A CA secret's value has the same
shape, so a certificate's issuer is read back with :func:`parse_bundle`.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cloudsync.values.keys import PrivateKey, load_private_key, private_pem

# Clocks of the machines that check a certificate drift; a certificate valid from a few
# minutes before it was made is accepted by them right away.
BACKDATE = timedelta(minutes=5)
_PEM_CERT = b"-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class Bundle:
    """A certificate with its private key and the certificates above it."""

    certificate: x509.Certificate
    private_key: CertificateIssuerPrivateKeyTypes
    chain: tuple[x509.Certificate, ...] = ()


@dataclass(frozen=True)
class CertificateRequest:
    """The non-secret settings of one certificate."""

    common_name: str
    days: int
    is_ca: bool = False
    usage: str = "client"
    dns_names: tuple[str, ...] = ()


class BundleError(ValueError):
    """A value that should hold a certificate and its key does not (never carries the value)."""


def issue(request: CertificateRequest, key: PrivateKey, issuer: Bundle | None, now: datetime) -> x509.Certificate:
    """Sign a certificate for ``key``: by ``issuer``, or by ``key`` itself when there is none."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, request.common_name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    signer: CertificateIssuerPrivateKeyTypes = issuer.private_key if issuer else key
    issuer_name = issuer.certificate.subject if issuer else subject
    if issuer is not None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.certificate.public_key())  # type: ignore[arg-type]
    else:
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    builder = (x509.CertificateBuilder()
               .subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - BACKDATE).not_valid_after(now + timedelta(days=request.days))
               .add_extension(ski, critical=False).add_extension(aki, critical=False))
    if request.is_ca:
        builder = (builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(_key_usage(cert_sign=True), critical=True))
    else:
        builder = (builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(_key_usage(encipher=isinstance(key, rsa.RSAPrivateKey)), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(_usages(request.usage)), critical=False))
        names = _alt_names(request)
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, _hash_for(signer))


def bundle_text(cert: x509.Certificate, key: PrivateKey, issuer: Bundle | None, fmt: str = "pem") -> bytes:
    """The value of a certificate secret."""
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    ca_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in _chain_of(issuer))
    key_pem = private_pem(key)
    if fmt == "json":
        doc = {"certificate": cert_pem.decode(), "ca": ca_pem.decode() or None, "private_key": key_pem.decode()}
        return json.dumps(doc, indent=2).encode() + b"\n"
    return cert_pem + ca_pem + key_pem


def certificates_text(data: bytes) -> bytes:
    """The public part of a bundle: its certificates, in PEM."""
    bundle = parse_bundle(data)
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (bundle.certificate, *bundle.chain))


def parse_bundle(data: bytes) -> Bundle:
    """Read a PEM or JSON bundle back; raise BundleError when it is not one."""
    try:
        if data.lstrip().startswith(b"{"):
            doc = json.loads(data)
            certs = x509.load_pem_x509_certificates((doc["certificate"] + (doc.get("ca") or "")).encode())
            key = load_private_key(doc["private_key"].encode())
        else:
            certs = x509.load_pem_x509_certificates(data[data.index(_PEM_CERT):])
            key = load_private_key(data)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BundleError("it does not hold a PEM certificate and its private key") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise BundleError("its private key type cannot sign certificates")
    if key.public_key() != certs[0].public_key():
        raise BundleError("its private key does not belong to its certificate")
    return Bundle(certificate=certs[0], private_key=key, chain=tuple(certs[1:]))


def parse_issuer(data: bytes) -> Bundle:
    """A bundle that may sign certificates (a CA); raise BundleError otherwise."""
    bundle = parse_bundle(data)
    try:
        constraints = bundle.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise BundleError("its certificate is not a CA certificate (declare it with generate: {type: ca})")
    return bundle


def _chain_of(issuer: Bundle | None) -> tuple[x509.Certificate, ...]:
    return (issuer.certificate, *issuer.chain) if issuer is not None else ()


def _hash_for(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | hashes.SHA384 | None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None  # Ed25519 signs the message itself
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()


def _key_usage(*, cert_sign: bool = False, encipher: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=encipher,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
                         crl_sign=cert_sign, encipher_only=False, decipher_only=False)


def _usages(usage: str) -> list[x509.ObjectIdentifier]:
    return {"client": [ExtendedKeyUsageOID.CLIENT_AUTH], "server": [ExtendedKeyUsageOID.SERVER_AUTH],
            "both": [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]}[usage]


def _alt_names(request: CertificateRequest) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for name in request.dns_names:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    return names

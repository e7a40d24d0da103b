"""Private keys (Ed25519, RSA, ECDSA) as PEM or OpenSSH text, and their public halves.

Keys are serialized unencrypted: the secret store is what protects them, and every
consumer (TLS libraries, ssh, JWT signers) reads unencrypted PKCS#8 PEM.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

DEFAULT_RSA_BITS = 3072
CURVES: dict[str, ec.EllipticCurve] = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1()}


def new_private_key(key_type: str, *, bits: int | None = None, curve: str | None = None) -> PrivateKey:
    """A fresh private key from the operating system's CSPRNG."""
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=bits or DEFAULT_RSA_BITS)
    if key_type == "ecdsa":
        return ec.generate_private_key(CURVES[curve or "p256"])
    raise ValueError(f"unknown key type {key_type}")


def private_pem(key: PrivateKey, fmt: str = "pem") -> bytes:
    """PKCS#8 PEM (``pem``) or the OpenSSH private key format (``openssh``)."""
    encoding = serialization.PrivateFormat.OpenSSH if fmt == "openssh" else serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, encoding, serialization.NoEncryption())


def load_private_key(data: bytes) -> PrivateKeyTypes:
    """Parse a PKCS#8 / traditional PEM or an OpenSSH private key; raise ValueError otherwise."""
    if b"OPENSSH PRIVATE KEY" in data:
        return serialization.load_ssh_private_key(data, password=None)
    return serialization.load_pem_private_key(data, password=None)


def public_text(public: PublicKeyTypes, fmt: str = "pem") -> bytes:
    """The public key as SubjectPublicKeyInfo PEM, or as an OpenSSH ``authorized_keys`` line."""
    if fmt == "openssh":
        return public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b"\n"
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

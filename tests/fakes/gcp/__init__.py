"""A faithful in-process fake of GCP Secret Manager, served over gRPC (see server.py)."""

from tests.fakes.gcp.errors import FakeError
from tests.fakes.gcp.server import PERMISSIONS, TLS_NAMES, FakeSecretManager

__all__ = ["PERMISSIONS", "TLS_NAMES", "FakeError", "FakeSecretManager"]

"""The one error type of the fake: a gRPC status code, a message, optional retry delay."""

from __future__ import annotations

import grpc


class FakeError(Exception):
    """Raised by the store; the server turns it into the RPC's status."""

    def __init__(self, code: grpc.StatusCode, message: str, *, retry_delay: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_delay = retry_delay

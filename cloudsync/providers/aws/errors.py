"""Turn boto3/botocore failures into :class:`ProviderError` (never an SDK dump, never a value).

Throttling, 5xx and connection failures are ``transient`` (the apply engine retries them,
honouring ``retry_after``); access denied names the IAM action that was missing; rejected
or missing credentials are one line naming the target.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ProxyConnectionError,
    ReadTimeoutError,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

from cloudsync.providers.base import ProviderError

THROTTLING_CODES = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
    "RequestThrottled", "RequestThrottledException", "ThrottledException", "SlowDown",
})
SERVER_CODES = frozenset({"InternalServiceError", "InternalFailure", "InternalServerError", "ServiceUnavailable",
                          "RequestTimeout", "RequestTimeoutException"})
ACCESS_CODES = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"})
CREDENTIAL_CODES = frozenset({
    "ExpiredTokenException", "ExpiredToken", "UnrecognizedClientException", "InvalidClientTokenId",
    "InvalidSignatureException", "SignatureDoesNotMatch", "IncompleteSignature", "MissingAuthenticationToken",
})
_CREDENTIAL_ERRORS = (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError, TokenRetrievalError,
                      SSOTokenLoadError, UnauthorizedSSOTokenError, ProfileNotFound)
_CONNECTION_ERRORS = (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError,
                      ProxyConnectionError)
CREDENTIALS_HINT = ("refresh or configure AWS credentials for this target (environment, AWS_PROFILE / profile:, "
                    "SSO login, instance role), then run again")
MAX_MESSAGE = 300


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "Unknown")


def credentials_error(target: str, detail: str) -> ProviderError:
    return ProviderError(f"no usable AWS credentials for target {target} ({detail})", code="Credentials",
                         hint=CREDENTIALS_HINT)


def map_error(exc: Exception, *, target: str, operation: str, iam_action: str, name: str | None,
              carries_value: bool) -> ProviderError:
    """The :class:`ProviderError` for one failed call.

    When the request carried a value, AWS's own message is dropped: validation messages
    may echo request parameters, and a value must never reach an error.
    """
    subject = f"{operation} {name}" if name else operation
    if isinstance(exc, ClientError) and getattr(exc, "operation_name", operation) == "AssumeRole":
        # Raised while refreshing the target's assumed-role credentials, not by Secrets Manager.
        return ProviderError(f"target {target} cannot assume its role_arn ({error_code(exc)})",
                             code=error_code(exc), hint="check the role's trust policy and the caller's "
                             "sts:AssumeRole permission")
    if isinstance(exc, ClientError):
        code = error_code(exc)
        aws_message = "" if carries_value else _clean(exc.response.get("Error", {}).get("Message"))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        detail = f": {aws_message}" if aws_message else ""
        if code in THROTTLING_CODES or code in SERVER_CODES or status >= 500:
            return ProviderError(f"{subject}: AWS is throttling or failing{detail}", code=code, transient=True,
                                 retry_after=_retry_after(exc))
        if code in ACCESS_CODES:
            return ProviderError(f"{subject}: access denied; the identity lacks {iam_action}", code=code,
                                 hint=f"grant {iam_action} (`cloudsync permissions --target {target}` "
                                      "prints the policy cloudsync needs)")
        if code in CREDENTIAL_CODES:
            return ProviderError(f"AWS rejected the credentials of target {target} ({code})", code=code,
                                 hint=CREDENTIALS_HINT)
        return ProviderError(f"{subject}{detail or f': {code}'}", code=code)
    if isinstance(exc, _CREDENTIAL_ERRORS):
        return credentials_error(target, exc.__class__.__name__)
    if isinstance(exc, _CONNECTION_ERRORS):
        return ProviderError(f"{subject}: cannot reach AWS Secrets Manager ({exc.__class__.__name__})",
                             code="ConnectionError", transient=True)
    if isinstance(exc, BotoCoreError):
        # ParamValidationError and friends print parameters: keep only the class name.
        return ProviderError(f"{subject}: request failed in the AWS SDK ({exc.__class__.__name__})",
                             code=exc.__class__.__name__)
    raise exc


def _retry_after(exc: ClientError) -> float | None:
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
    for key in ("retry-after", "x-amz-retry-after"):
        raw = headers.get(key)
        if raw is None:
            continue
        try:
            seconds = float(raw)
        except ValueError:
            continue
        # x-amz-retry-after is in milliseconds, Retry-After in seconds.
        return seconds / 1000 if key.startswith("x-amz") else seconds
    return None


def _clean(message: object) -> str:
    text = " ".join(str(message or "").split())
    # moto prefixes its messages with a copy of botocore's own "An error occurred ..." line.
    if text.startswith("An error occurred (") and ": " in text:
        text = text.split(": ", 1)[1]
    return text[:MAX_MESSAGE]

"""Turn boto3/botocore failures into :class:`ProviderError` (never an SDK dump, never a value).

Throttling, 5xx and connection failures are ``transient`` (the apply engine retries them,
honouring ``retry_after``); access denied names the IAM action that was missing; rejected
or missing credentials are one line naming the target.
"""

from __future__ import annotations

import re

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

from cloudsync.providers.errors import CallContext, ErrorKind, ProviderError

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
NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "NoSuchEntity"})
CONFLICT_CODES = frozenset({"ResourceExistsException", "PreconditionNotMetException", "EntityAlreadyExists",
                            "ConcurrentModification", "ConcurrentModificationException"})
QUOTA_CODES = frozenset({"LimitExceededException", "LimitExceeded", "ServiceQuotaExceededException"})
CREDENTIALS_HINT = ("set AWS_PROFILE (or profile: on the target) or run `aws sso login`; or provide "
                    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a container or instance role, then run again")
NETWORK_HINT = ("check the endpoint URL and that it is reachable from here (DNS, proxy, firewall, VPC endpoint); "
                "an emulator must be running")
MAX_MESSAGE = 300
# "... is not authorized to perform: secretsmanager:ListSecrets on resource: ..." names the missing action.
_NOT_AUTHORIZED = re.compile(r"not authorized to perform:? ([A-Za-z0-9-]+:[A-Za-z0-9*]+)")


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "Unknown")


def credentials_error(target: str, detail: str, *, operation: str | None = None) -> ProviderError:
    return ProviderError(f"no usable AWS credentials ({detail})", code="Credentials",
                         hint=CREDENTIALS_HINT, kind=ErrorKind.CREDENTIALS, operation=operation)


def map_error(exc: Exception, *, target: str, operation: str, iam_action: str, name: str | None,
              carries_value: bool, endpoint: str | None = None) -> ProviderError:
    """The :class:`ProviderError` for one failed call.

    When the request carried a value, AWS's own message is dropped: validation messages
    may echo request parameters, and a value must never reach an error.
    """
    subject = f"{operation} {name}" if name else operation
    context = CallContext(operation=operation, endpoint=endpoint)
    if isinstance(exc, ClientError) and getattr(exc, "operation_name", operation) == "AssumeRole":
        # Raised while refreshing the target's assumed-role credentials, not by Secrets Manager.
        return ProviderError(f"cannot assume the target's role_arn ({error_code(exc)})",
                             code=error_code(exc), hint="check the role's trust policy and the caller's "
                             "sts:AssumeRole permission", kind=ErrorKind.CREDENTIALS,
                             request_id=_request_id(exc), operation="AssumeRole")
    if isinstance(exc, ClientError):
        return _client_error(exc, target=target, subject=subject, iam_action=iam_action,
                             carries_value=carries_value, context=context)
    if isinstance(exc, _CREDENTIAL_ERRORS):
        return credentials_error(target, exc.__class__.__name__, operation=operation)
    context["code"] = exc.__class__.__name__
    if isinstance(exc, _CONNECTION_ERRORS):
        context["endpoint"] = getattr(exc, "kwargs", {}).get("endpoint_url") or endpoint
        return ProviderError(f"{subject}: cannot reach the endpoint ({exc.__class__.__name__})",
                             transient=True, kind=ErrorKind.NETWORK, hint=NETWORK_HINT, **context)
    if isinstance(exc, BotoCoreError):
        # ParamValidationError and friends print parameters: keep only the class name.
        return ProviderError(f"{subject}: request failed in the AWS SDK ({exc.__class__.__name__})", **context)
    raise exc


def _client_error(exc: ClientError, *, target: str, subject: str, iam_action: str, carries_value: bool,
                  context: CallContext) -> ProviderError:
    code = error_code(exc)
    aws_message = "" if carries_value else _clean(exc.response.get("Error", {}).get("Message"))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    detail = f": {aws_message}" if aws_message else ""
    ids = CallContext(**context, code=code, request_id=_request_id(exc))
    if code in THROTTLING_CODES or status == 429:
        return ProviderError(f"{subject}: AWS is throttling the calls{detail}", transient=True,
                             retry_after=_retry_after(exc), kind=ErrorKind.THROTTLED, **ids)
    if code in SERVER_CODES or status >= 500:
        return ProviderError(f"{subject}: AWS is failing{detail}", transient=True, retry_after=_retry_after(exc),
                             kind=ErrorKind.UNAVAILABLE, **ids)
    if code in ACCESS_CODES:
        said = _NOT_AUTHORIZED.search(aws_message)
        missing = said.group(1) if said else iam_action
        return ProviderError(f"{subject}: access denied; the identity lacks {missing}",
                             hint=f"grant {missing} (`cloudsync permissions --target {target}` "
                                  "prints the policy cloudsync needs)", kind=ErrorKind.PERMISSION,
                             permission=missing, **ids)
    if code in CREDENTIAL_CODES:
        return ProviderError(f"AWS rejected the credentials ({code})", hint=CREDENTIALS_HINT,
                             kind=ErrorKind.CREDENTIALS, **ids)
    kind = (ErrorKind.NOT_FOUND if code in NOT_FOUND_CODES else ErrorKind.CONFLICT if code in CONFLICT_CODES
            else ErrorKind.THROTTLED if code in QUOTA_CODES else ErrorKind.OTHER)
    return ProviderError(f"{subject}{detail or f': {code}'}", kind=kind, **ids)


def _request_id(exc: ClientError) -> str | None:
    meta = exc.response.get("ResponseMetadata", {})
    found = meta.get("RequestId") or (meta.get("HTTPHeaders") or {}).get("x-amzn-requestid")
    return str(found)[:100] if found else None


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

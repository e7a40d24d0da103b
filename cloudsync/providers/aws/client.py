"""Build the Secrets Manager client of one target: endpoint, credentials, retries.

Credentials come from the standard boto3 chain (environment, shared files, SSO, container
and instance roles), optionally from a named ``profile``, and optionally through STS
``AssumeRole`` on ``role_arn`` (session name ``cloudsync``, refreshed before it expires, so
a long apply never runs out). A plain-http ``endpoint`` is accepted only for loopback hosts.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    Credentials,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import BotoCoreError
from botocore.session import get_session

from cloudsync import __version__
from cloudsync.providers.aws import rules
from cloudsync.providers.aws.errors import credentials_error
from cloudsync.providers.aws.rules import AwsTarget
from cloudsync.providers.base import ProviderError, is_loopback
from cloudsync.providers.rules import EndpointRefused

SESSION_NAME = "cloudsync"
# botocore's ``standard`` mode retries throttling and transient errors with jittered
# exponential backoff; max_attempts still follows AWS_MAX_ATTEMPTS / the profile's setting.
RETRIES = {"mode": "standard"}
MAX_POOL = 32


# botocore logs whole request and response bodies at DEBUG, and those carry SecretString.
# Whatever logging configuration cloudsync is embedded in, those records never leave.
WIRE_LOGGERS = ("botocore.endpoint", "botocore.parsers")


class _NoWireBodies(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


for _name in WIRE_LOGGERS:
    logging.getLogger(_name).addFilter(_NoWireBodies())



def check_endpoint(target: str, endpoint: str | None) -> str | None:
    """The endpoint URL to use; plain http only for loopback hosts (emulators). ``validate`` checks the same rule."""
    if endpoint is None:
        return None
    try:
        return rules.check_endpoint(endpoint)
    except EndpointRefused as refused:
        raise ProviderError(f"target {target}: {refused.message}", code="InsecureEndpoint"
                            if endpoint.startswith("http:") else "InvalidEndpoint", hint=refused.hint) from None


def client_config() -> Config:
    return Config(retries=RETRIES, max_pool_connections=MAX_POOL, connect_timeout=10, read_timeout=30,
                  user_agent_extra=f"cloudsync/{__version__}")


class _AssumedRole(CredentialProvider):  # type: ignore[misc]
    """A credential provider that hands out the refreshable assumed-role credentials."""

    METHOD = "cloudsync-assume-role"

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Credentials:
        return self._credentials


def _base_session(target: str, profile: str | None) -> boto3.session.Session:
    try:
        return boto3.session.Session(profile_name=profile)
    except BotoCoreError as exc:  # ProfileNotFound and invalid shared config files
        raise credentials_error(target, f"profile {profile!r}: {exc.__class__.__name__}") from None


def _assumed_session(target: str, base: boto3.session.Session, region: str, role_arn: str,
                     endpoint: str | None) -> boto3.session.Session:
    source = base.get_credentials()
    if source is None:
        raise credentials_error(target, f"nothing to assume {role_arn} with")
    # An emulator serves STS too; a private Secrets Manager endpoint does not, so STS uses
    # its regional endpoint unless the target points at a loopback emulator.
    sts_endpoint = endpoint if endpoint and is_loopback(urlsplit(endpoint).hostname or "") else None

    def client_creator(service: str, **kwargs: Any) -> Any:
        return base.client(service, region_name=region, endpoint_url=sts_endpoint, config=client_config(),
                           **kwargs)

    fetcher = AssumeRoleCredentialFetcher(client_creator=client_creator, source_credentials=source,
                                          role_arn=role_arn, extra_args={"RoleSessionName": SESSION_NAME})
    credentials = DeferredRefreshableCredentials(refresh_using=fetcher.fetch_credentials,
                                                 method=_AssumedRole.METHOD)
    botocore_session = get_session()
    botocore_session.register_component("credential_provider",
                                        CredentialResolver(providers=[_AssumedRole(credentials)]))
    return boto3.session.Session(botocore_session=botocore_session)


def make_session(target: str, config: AwsTarget) -> boto3.session.Session:
    """The boto3 session of one ``aws`` target: every client of the target shares its credentials."""
    endpoint = check_endpoint(target, config.endpoint)
    session = _base_session(target, config.profile)
    try:
        if config.role_arn:
            return _assumed_session(target, session, config.region, config.role_arn, endpoint)
        if session.get_credentials() is None:
            raise credentials_error(target, "none found in the environment, shared files, SSO or instance role")
        return session
    except BotoCoreError as exc:
        raise credentials_error(target, exc.__class__.__name__) from None


def make_client(target: str, config: AwsTarget, session: boto3.session.Session | None = None) -> Any:
    """The Secrets Manager client of one ``aws`` target (credentials checked, not yet used)."""
    endpoint = check_endpoint(target, config.endpoint)
    session = session or make_session(target, config)
    try:
        return session.client("secretsmanager", region_name=config.region, endpoint_url=endpoint,
                              config=client_config())
    except BotoCoreError as exc:
        raise credentials_error(target, exc.__class__.__name__) from None


def make_iam_client(target: str, config: AwsTarget, session: boto3.session.Session) -> Any:
    """The IAM client of the access scan: ``iam_endpoint``, else the loopback emulator, else global IAM.

    A private Secrets Manager endpoint does not serve IAM, so only an emulator's endpoint is reused.
    """
    endpoint = check_endpoint(target, config.iam_endpoint)
    if endpoint is None and config.endpoint and is_loopback(urlsplit(config.endpoint).hostname or ""):
        endpoint = config.endpoint
    try:
        return session.client("iam", region_name=config.region, endpoint_url=endpoint, config=client_config())
    except BotoCoreError as exc:
        raise credentials_error(target, exc.__class__.__name__) from None


def make_cloudtrail_client(target: str, config: AwsTarget, session: boto3.session.Session) -> Any:
    """The CloudTrail client of the policy-change feed: the loopback emulator, else the regional endpoint.

    A private Secrets Manager endpoint does not serve CloudTrail, so only an emulator's endpoint is reused.
    """
    endpoint = config.endpoint if config.endpoint and is_loopback(urlsplit(config.endpoint).hostname or "") else None
    try:
        return session.client("cloudtrail", region_name=config.region, endpoint_url=endpoint, config=client_config())
    except BotoCoreError as exc:
        raise credentials_error(target, exc.__class__.__name__) from None

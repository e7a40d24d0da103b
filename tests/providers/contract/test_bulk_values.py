"""The provider contract, bulk value reads: ``read_values`` answers each name as ``read_value`` does.

Local, GCP and Azure have no batch read and use the base class's loop; AWS overrides it with
BatchGetSecretValue. Whichever way a target reads, the engine sees the same outcome per name:
the value, or the error of that one name (absence is NotFoundError), never a failed batch.
"""

from __future__ import annotations

import pytest

from cloudsync.providers.base import NotFoundError, ProviderError
from cloudsync.values.secret import SecretValue
from tests.providers.contract.clouds import Cloud
from tests.providers.contract.drive import OUTPUTS, Driver

SECRETS = """\
- name: payments/api-key
  targets: [T]
  value: {env: API_KEY}
- name: payments/db-password
  targets: [T]
  value: {env: DB_PASSWORD}
"""
MISSING = "payments-nothing-here"


def test_read_values_gives_each_name_what_read_value_gives(cloud: Cloud, target: Driver, canary: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", f"{canary}-api")
    monkeypatch.setenv("DB_PASSWORD", f"{canary}-db")
    target.declare(SECRETS)
    converged = target.converge()
    api, db = converged.remote_name("payments/api-key"), converged.remote_name("payments/db-password")

    with target.provider() as provider:
        found = provider.read_values([api, MISSING, db, api])  # a name asked twice is read once
        singles = {name: provider.read_value(name) for name in (api, db)}
        with pytest.raises(NotFoundError) as single_missing:
            provider.read_value(MISSING)

    assert list(found) == [api, MISSING, db]
    assert found[api] == singles[api] == SecretValue(f"{canary}-api")
    assert found[db] == singles[db] == SecretValue(f"{canary}-db")
    absent = found[MISSING]
    assert isinstance(absent, NotFoundError) and not absent.transient
    assert absent.kind is single_missing.value.kind and absent.code == single_missing.value.code
    assert absent.message == single_missing.value.message  # the same words as the single read
    OUTPUTS.append(str(absent))  # the autouse leak check searches it for the canary


def test_read_values_of_nothing_reads_nothing(cloud: Cloud, target: Driver) -> None:
    target.declare("")
    with target.provider() as provider:
        before = sum(provider.api_calls.values())
        assert provider.read_values([]) == {}
        assert sum(provider.api_calls.values()) == before


def test_a_failing_name_is_that_names_error(cloud: Cloud, target: Driver) -> None:
    """Errors are ProviderErrors with no frames kept (the engine holds them for the whole run)."""
    target.declare("")
    with target.provider() as provider:
        found = provider.read_values([MISSING])
    error = found[MISSING]
    assert isinstance(error, ProviderError)
    assert error.__traceback__ is None and error.__context__ is None

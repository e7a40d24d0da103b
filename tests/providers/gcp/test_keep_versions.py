"""``keep_versions`` disables only versions cloudsync's own records prove it wrote.

GCP versions carry no labels: whoever adds one out of band (a console edit, an external
rotator, an incident responder) leaves nothing on it that says so. cloudsync's record of
its own versions (the annotation ``cloudsync-versions``, and the labels that name the
current and the superseded version) is what pruning may act on; every other version stays
as it is, however old.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from google.cloud import secretmanager
from google.protobuf import field_mask_pb2

from cloudsync.providers.gcp.pruning import MAX_CHARS, decode, encode
from tests.conftest import assert_no_canary
from tests.providers.gcp import engine
from tests.providers.gcp.conftest import PROJECT

Client = secretmanager.SecretManagerServiceClient
State = secretmanager.SecretVersion.State
DB = f"projects/{PROJECT}/secrets/payments__db-password"
TOKEN = f"projects/{PROJECT}/secrets/payments__api-token"

DB_SECRET = """\
- name: payments/db-password
  targets: [gcp-prod]
  value: {env: DB_PASSWORD}
"""


def versions(sm: Client, name: str) -> dict[int, str]:
    return {int(v.name.rsplit("/", 1)[1]): State(v.state).name
            for v in sm.list_secret_versions(request={"parent": name})}


def add_out_of_band(sm: Client, name: str, data: str) -> None:
    sm.add_secret_version(request={"parent": name, "payload": {"data": data.encode()}})


def write(stack: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DB_PASSWORD", value)
    outcome = engine.apply(stack)
    assert outcome.changes(), "each write here is a new value"


def test_a_version_added_out_of_band_between_cloudsyncs_writes_stays_enabled(
        gcp_stack: Callable[..., Path], sm: Client, canary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = gcp_stack(DB_SECRET, target_extra=", keep_versions: 2")
    write(stack, monkeypatch, f"{canary}-1")  # version 1
    write(stack, monkeypatch, f"{canary}-2")  # version 2
    add_out_of_band(sm, DB, f"{canary}-theirs")  # version 3: someone else's
    write(stack, monkeypatch, f"{canary}-4")  # version 4 (undoes their write, keeps their version)
    write(stack, monkeypatch, f"{canary}-5")  # version 5
    write(stack, monkeypatch, f"{canary}-6")  # version 6

    # cloudsync keeps its newest two (5, 6) and disables its older ones; version 3 is not its own.
    assert versions(sm, DB) == {1: "DISABLED", 2: "DISABLED", 3: "ENABLED", 4: "DISABLED", 5: "ENABLED",
                                6: "ENABLED"}
    assert engine.plan(stack).changes() == []
    # The record stays small: the versions kept, and the one disabled last (dropped at the next write).
    assert sm.get_secret(name=DB).annotations["cloudsync-versions"] == "4-6"


def test_versions_added_after_cloudsyncs_write_are_never_counted_nor_disabled(
        gcp_stack: Callable[..., Path], sm: Client, canary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = gcp_stack(DB_SECRET, target_extra=", keep_versions: 1")
    write(stack, monkeypatch, f"{canary}-1")
    for i in range(3):  # an external rotator, writing after cloudsync
        add_out_of_band(sm, DB, f"{canary}-rotator-{i}")
    write(stack, monkeypatch, f"{canary}-5")  # undoes the drift: version 5; version 1 is cloudsync's, beyond 1
    assert versions(sm, DB) == {1: "DISABLED", 2: "ENABLED", 3: "ENABLED", 4: "ENABLED", 5: "ENABLED"}


def test_versions_cloudsync_has_no_record_of_stay_enabled(
        gcp_stack: Callable[..., Path], sm: Client, canary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret written before the record existed (or whose record was edited away, or made
    absurd): only the versions its labels name count as cloudsync's."""
    stack = gcp_stack(DB_SECRET, target_extra=", keep_versions: 1")
    write(stack, monkeypatch, f"{canary}-1")
    for i in range(2):
        add_out_of_band(sm, DB, f"{canary}-theirs-{i}")  # versions 2, 3
    write(stack, monkeypatch, f"{canary}-4")  # version 4: version 1 is disabled, 2 and 3 stay
    # A hand-edited record claiming every version ever: ignored, not expanded.
    secret = sm.get_secret(name=DB)
    secret.annotations["cloudsync-versions"] = "1-999999999"
    sm.update_secret(request={"secret": secret, "update_mask": field_mask_pb2.FieldMask(paths=["annotations"])})
    write(stack, monkeypatch, f"{canary}-5")  # the labels name 4: it is disabled, nothing else
    assert versions(sm, DB) == {1: "DISABLED", 2: "ENABLED", 3: "ENABLED", 4: "DISABLED", 5: "ENABLED"}
    assert sm.get_secret(name=DB).annotations["cloudsync-versions"] == "4-5"


def test_keep_versions_never_cuts_a_grace_period_short(
        gcp_stack: Callable[..., Path], sm: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """The version a rotation superseded stays enabled for its grace, even with keep_versions: 1:
    its own retire change disables it when the grace ends."""

    def declare(length: int) -> Path:
        return gcp_stack(f"""\
- name: payments/api-token
  targets: [gcp-prod]
  value: {{generate: {{length: {length}}}}}
  rotation: {{every: 30d, grace: 1d}}
""", target_extra=", keep_versions: 1")

    engine.apply(declare(32))
    rotated = engine.apply(declare(40))
    assert rotated.changes() == [("payments/api-token", "update", ["value"])]
    assert versions(sm, TOKEN) == {1: "ENABLED", 2: "ENABLED"}
    assert_no_canary(sm.access_secret_version(name=f"{TOKEN}/versions/1").payload.data.decode(),
                     rotated.rendered())


def test_the_record_is_small_bounded_and_proves_nothing_when_malformed() -> None:
    assert encode([7, 1, 2, 3, 9, 8]) == "1-3,7-9" and decode("1-3,7-9") == {1, 2, 3, 7, 8, 9}
    for forged in ("1-999999999", "0", "3-1", "1,,2", "a", "1-2-3", "-4", "1" * 13, "5," * 2001):
        assert decode(forged) == frozenset(), forged
    scattered = range(1_000_000, 1_004_000, 2)  # 2,000 versions no run can shorten
    text = encode(scattered)
    assert len(text) <= MAX_CHARS and decode(text) and max(decode(text)) == max(scattered)  # the oldest left out

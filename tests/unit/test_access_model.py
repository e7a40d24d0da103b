"""The cloud-neutral access scan: what it says about completeness, per secret and per target."""

from __future__ import annotations

from cloudsync.providers.access import AccessScan, EffectiveReader, Via

READER = EffectiveReader("arn:aws:iam::1:role/app", Via.SECRET, "arn:aws:secretsmanager:r:1:secret:a-AbCdEf",
                         "resource policy, statement App")


def test_a_full_scan_is_complete_for_every_scanned_secret() -> None:
    scan = AccessScan(readers={"a": (READER,), "b": ()})
    assert scan.complete
    assert scan.complete_for("a") and scan.complete_for("b")
    assert scan.readers_of("a") == (READER,)


def test_a_secret_that_was_not_scanned_is_unknown_not_unread() -> None:
    scan = AccessScan(readers={"a": (READER,)})
    assert scan.readers_of("b") == ()
    assert scan.reasons_for("b") == ("not scanned",)
    assert not scan.complete_for("b")


def test_one_secret_incomplete_makes_the_scan_incomplete_but_not_the_others() -> None:
    scan = AccessScan(readers={"a": (), "b": ()}, secret_reasons={"a": ("resource policy not read",)})
    assert not scan.complete
    assert scan.reasons_for("a") == ("resource policy not read",)
    assert scan.complete_for("b")


def test_a_skipped_target_lists_every_secret_as_unknown() -> None:
    scan = AccessScan.skipped(["a", "b"], "access_scan: false")
    assert scan.readers == {"a": (), "b": ()}
    assert [scan.reasons_for(name) for name in ("a", "b")] == [("access_scan: false",)] * 2
    assert not scan.complete


def test_via_values_are_the_documented_words() -> None:
    assert [v.value for v in Via] == ["secret", "vault", "resource-group", "subscription", "management-group",
                                      "project", "folder", "organization", "account", "access-policy"]

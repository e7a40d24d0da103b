"""The who-can-read-what report: the pure builder and its text, markdown and JSON forms."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from cloudsync.access.model import SecretFacts, build_report
from cloudsync.access.render import render_json, render_markdown, render_text
from cloudsync.providers.access import EffectiveReader, Via

TODAY = date(2026, 11, 29)
API = "arn:aws:iam::111111111111:role/payments-api"
ADMIN = "arn:aws:iam::111111111111:role/ops-admin"
NAMES = {"aws-prod": {API: "payments-api"}, "gcp-prod": {"serviceAccount:api@p.iam.gserviceaccount.com": "payments-api"}}


def facts(secret: str = "payments/db", *, target: str = "aws-prod", readers: tuple[EffectiveReader, ...] = (),
          declared: tuple[str, ...] = ("payments-api",), **extra: object) -> SecretFacts:
    return SecretFacts(target=target, provider=target.split("-")[0], remote_name=secret, secret=secret,
                       managed=True, declared_readers=declared, readers=readers, **extra)  # type: ignore[arg-type]


def own(principal: str = API) -> EffectiveReader:
    return EffectiveReader(principal, Via.SECRET, "payments/db", "resource policy: cloudsync-readers")


def broad(principal: str = ADMIN, *, conditional: bool = False) -> EffectiveReader:
    return EffectiveReader(principal, Via.ACCOUNT, "111111111111", "role policy ops:Stmt1", conditional)


def test_declared_reader_through_its_own_grant_is_declared() -> None:
    report = build_report("payments", ["aws-prod"], [facts(readers=(own(),))], NAMES, today=TODAY)
    [secret] = report.secrets
    [reader] = secret.readers
    assert (reader.name, reader.declared, reader.via) == ("payments-api", True, Via.SECRET)
    assert secret.undeclared == ()
    assert report.summary()["with_undeclared_readers"] == 0


def test_broad_grant_makes_an_undeclared_reader_listed_first() -> None:
    report = build_report("payments", ["aws-prod"], [facts(readers=(own(), broad()))], NAMES, today=TODAY)
    [secret] = report.secrets
    assert [r.principal for r in secret.readers] == [ADMIN, API]
    assert [r.principal for r in secret.undeclared] == [ADMIN]
    assert secret.undeclared[0].name is None
    assert report.summary()["with_undeclared_readers"] == 1


def test_a_known_principal_not_declared_on_this_secret_is_named_but_undeclared() -> None:
    report = build_report("payments", ["aws-prod"], [facts(readers=(own(),), declared=())], NAMES, today=TODAY)
    [reader] = report.secrets[0].readers
    assert (reader.name, reader.declared) == ("payments-api", False)


def test_the_same_grant_reported_twice_is_one_row() -> None:
    report = build_report("payments", ["aws-prod"], [facts(readers=(broad(), broad()))], NAMES, today=TODAY)
    assert len(report.secrets[0].readers) == 1


def test_principal_filter_is_the_blast_radius_across_targets() -> None:
    gcp_api = "serviceAccount:api@p.iam.gserviceaccount.com"
    items = [facts("payments/db", readers=(own(), broad())),
             facts("payments/other", readers=(broad(),)),
             facts("payments/db", target="gcp-prod",
                   readers=(EffectiveReader(gcp_api, Via.PROJECT, "projects/p", "roles/secretmanager.secretAccessor"),))]
    by_name = build_report("payments", ["aws-prod", "gcp-prod"], items, NAMES, today=TODAY, principal="payments-api")
    assert [s.address for s in by_name.secrets] == ["aws-prod:payments/db", "gcp-prod:payments/db"]
    assert [p.principal for p in by_name.principals] == [API, gcp_api]
    by_id = build_report("payments", ["aws-prod"], items, NAMES, today=TODAY, principal=ADMIN)
    assert by_id.principals[0].can_read == ["aws-prod:payments/db", "aws-prod:payments/other"]


def test_incomplete_scan_is_unknown_not_none() -> None:
    item = facts(readers=(own(),), complete=False, incomplete_reasons=("iam:GetAccountAuthorizationDetails denied",))
    report = build_report("payments", ["aws-prod"], [item], NAMES, today=TODAY)
    data = json.loads(render_json(report))
    assert data["secrets"][0]["readers_complete"] is False
    assert "unknown" in render_text(report).plain
    assert "unknown" in render_markdown(report)


OLD_VALUE = datetime(2026, 1, 1, tzinfo=UTC)
NEW_VALUE = datetime(2026, 11, 28, tzinfo=UTC)


@pytest.mark.parametrize(("last", "written", "unused"), [
    (None, OLD_VALUE, True),  # never read, and the value has been there for months
    (None, NEW_VALUE, False),  # never read, but written yesterday: not unused yet
    (TODAY - timedelta(days=200), OLD_VALUE, True),
    (TODAY - timedelta(days=3), OLD_VALUE, False),
])
def test_unused_grants_where_the_cloud_tracks_reads(last: date | None, written: datetime, unused: bool) -> None:
    item = facts(readers=(own(),), tracks_last_access=True, last_accessed=last, current_version_at=written)
    report = build_report("payments", ["aws-prod"], [item], NAMES, today=TODAY)
    assert [(u.address, u.reader) for u in report.unused] == ([("aws-prod:payments/db", "payments-api")] if unused else [])


def test_no_unused_grant_claimed_where_the_cloud_does_not_say() -> None:
    report = build_report("payments", ["gcp-prod"], [facts(target="gcp-prod", tracks_last_access=False)], NAMES,
                          today=TODAY)
    assert report.unused == []


def test_age_and_rotation() -> None:
    made = datetime(2026, 9, 1, tzinfo=UTC)
    overdue = build_report("p", ["aws-prod"], [facts(current_version_at=made, rotation=timedelta(days=30))], NAMES,
                           today=TODAY).secrets[0]
    assert (overdue.version_age_days, overdue.rotation_due, overdue.rotation_overdue) == (89, date(2026, 10, 1), True)
    fresh = build_report("p", ["aws-prod"], [facts(current_version_at=made, rotation=timedelta(days=365))], NAMES,
                         today=TODAY).secrets[0]
    assert fresh.rotation_overdue is False


def test_json_contract_keys() -> None:
    report = build_report("payments", ["aws-prod"], [facts(readers=(own(), broad(conditional=True)))], NAMES, today=TODAY)
    data = json.loads(render_json(report))
    assert data["format_version"] == 1 and data["stack"] == "payments"
    secret = data["secrets"][0]
    assert {"address", "target", "provider", "secret", "remote_name", "managed", "declared_readers", "readers",
            "readers_complete", "last_accessed"} <= secret.keys()
    assert {"principal", "name", "declared", "via", "scope", "grant", "conditional"} == set(secret["readers"][0])
    assert secret["readers"][0]["conditional"] is True
    assert {"principal", "name", "can_read"} <= data["principals"][0].keys()
    assert {"secrets", "with_undeclared_readers", "principals"} <= data["summary"].keys()


HOSTILE = "evil\x1b[2J\r\nNo changes.\u202e|*_`<b>"


def test_hostile_strings_reach_no_output_raw() -> None:
    item = facts(secret="payments/db", readers=(EffectiveReader(HOSTILE, Via.ACCOUNT, HOSTILE, HOSTILE),),
                 declared=(HOSTILE,))
    report = build_report(HOSTILE, ["aws-prod"], [item], NAMES, today=TODAY, principal=HOSTILE)
    text = render_text(report).plain
    markdown = render_markdown(report)
    for rendered in (text, markdown):
        assert "\x1b" not in rendered and "\u202e" not in rendered and "\r" not in rendered
        assert "\nNo changes." not in rendered
    assert "<b>" not in markdown


def test_markdown_stays_within_a_comment_for_a_large_estate() -> None:
    items = [facts(f"payments/s{i:05d}", readers=(own(), broad())) for i in range(10_000)]
    report = build_report("payments", ["aws-prod"], items, NAMES, today=TODAY)
    markdown = render_markdown(report)
    assert len(markdown) <= 60_000
    assert "10000" in markdown  # the counts tell the whole story even when rows are left out


def test_html_report_renders_in_chromium_with_sortable_filterable_tables(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from cloudsync.access.html import render_html
    from tests.browser import render, table_rows

    items = [facts("payments/db", readers=(own(), broad())), facts("payments/smtp", readers=(own(),)),
             facts("payments/hostile", readers=(EffectiveReader(HOSTILE, Via.ACCOUNT, "*", HOSTILE),),
                   tracks_last_access=True, current_version_at=OLD_VALUE, complete=False,
                   incomplete_reasons=("access denied",))]
    report = build_report("payments", ["aws-prod"], items, NAMES, today=TODAY)
    page = tmp_path / "access.html"
    page.write_text(render_html(report), encoding="utf-8")
    shown = render(page, tmp_path)
    rows = table_rows(shown.dom)
    # readers: 2 + 1 + 1 + one "unknown" row for the incomplete scan; secrets: 3; principals: 3; unused: 1
    assert rows.rows == {"readers": 5, "secrets": 3, "principals": 3, "unused": 1}
    assert shown.dom.count('class="undeclared"') == 4  # two reader rows, two secret rows
    assert shown.external_requests == []
    assert "<b>" not in shown.dom.split("<body>", 1)[1].split("<script>", 1)[0].replace("<b>3</b>", "").replace(
        "<b>2</b>", "").replace("<b>1</b>", "").replace("<b>0</b>", "")
    assert "\x1b" not in shown.dom and "\u202e" not in shown.dom


def test_the_browser_harness_does_catch_a_page_that_reaches_out(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The positive control for the 'no external request' assertion above."""
    from tests.browser import render

    page = tmp_path / "leaky.html"
    page.write_text('<html><body><img src="http://assets.example.test/pixel.png"></body></html>', encoding="utf-8")
    assert "assets.example.test" in render(page, tmp_path).external_requests

"""The provider contract, CA replacement: a trust bundle holds the old and the new CA certificates
for the grace period and one after it, in every target kind; leaf certificates follow the new CA
in the same apply, after the bundle. Time is the plan's clock (``build_plan(when=...)``)."""

from __future__ import annotations

from datetime import timedelta

from cryptography import x509

from cloudsync.apply import apply_plan
from cloudsync.config.loader import load_stack
from cloudsync.plan.build import PlanRun, build_plan, open_session
from cloudsync.providers.base import now
from cloudsync.values import certs
from tests.providers.contract import drive
from tests.providers.contract.clouds import Cloud
from tests.providers.contract.drive import Driver

SECRETS = """\
- name: mtls/ca
  targets: [T]
  value: {generate: {type: ca, common_name: Contract CA, key_type: ed25519}}
- name: mtls/trust
  targets: [T]
  value: {public_key_of: {secret: mtls/ca, format: bundle}}
- name: mtls/client
  targets: [T]
  value: {generate: {type: certificate, ca: mtls/ca, common_name: client, key_type: ed25519}}
"""


def _run(target: Driver, *, replace: tuple[str, ...] = (), grace: timedelta | None = None,
         after: timedelta = timedelta(0)) -> PlanRun:
    stack = load_stack(target.root)
    with open_session(stack) as session:
        run = build_plan(session, list(stack.config.targets), replace=replace, grace=grace, when=now() + after)
        if run.plan.real_changes:
            report = apply_plan(session, run, sleep=lambda _s: None)
            assert report.ok, [(r.change.address, r.error) for r in report.results if r.error]
    drive.OUTPUTS.extend(d for c in run.plan.changes for d in c.details)
    return run


def _trusted(target: Driver, run: PlanRun) -> list[x509.Certificate]:
    remote = next(w.remote_name for w in run.desired if w.secret == "mtls/trust")
    return x509.load_pem_x509_certificates(target.read_value(remote).reveal())


def _cert(target: Driver, run: PlanRun, secret: str) -> x509.Certificate:
    remote = next(w.remote_name for w in run.desired if w.secret == secret)
    return certs.parse_bundle(target.read_value(remote).reveal()).certificate


def test_a_replaced_ca_stays_in_the_trust_bundle_for_the_grace_then_leaves(cloud: Cloud, target: Driver) -> None:
    target.declare(SECRETS)
    first = _run(target)
    old_ca = _cert(target, first, "mtls/ca")
    assert _trusted(target, first) == [old_ca]

    replaced = _run(target, replace=("mtls/ca",), grace=timedelta(days=2))
    order = [c.secret for _, group in replaced.plan.phases() for c in group]
    assert order == ["mtls/ca", "mtls/trust", "mtls/client"]  # new CA -> bundle -> leaf certificate
    new_ca = _cert(target, replaced, "mtls/ca")
    assert new_ca != old_ca
    assert _trusted(target, replaced) == [new_ca, old_ca]  # clients trust both while leaves are reissued
    _cert(target, replaced, "mtls/client").verify_directly_issued_by(new_ca)

    during = _run(target, after=timedelta(days=1))
    assert during.plan.real_changes == []  # still inside the grace: nothing to do
    assert _trusted(target, during) == [new_ca, old_ca]

    past = _run(target, after=timedelta(days=2, hours=1))
    assert [(c.secret, c.action.value) for c in past.plan.real_changes] == [("mtls/trust", "update")]
    assert _trusted(target, past) == [new_ca]  # after the grace, one CA


def test_grace_zero_drops_the_replaced_ca_in_the_same_apply(cloud: Cloud, target: Driver) -> None:
    target.declare(SECRETS)
    first = _run(target)
    old_ca = _cert(target, first, "mtls/ca")
    replaced = _run(target, replace=("mtls/ca",), grace=timedelta(0))
    new_ca = _cert(target, replaced, "mtls/ca")
    assert new_ca != old_ca and _trusted(target, replaced) == [new_ca]
    assert _run(target).plan.real_changes == []

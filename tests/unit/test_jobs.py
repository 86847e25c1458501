"""The background jobs: a timed release happens through the worker's run, and workers running
at once do each job's work exactly once (claimed per job, on both databases)."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import create_app, demo, jobs
from portal.access import Actor, unscoped
from portal.cli import upgrade_database
from portal.db import set_clock, utcnow
from portal.extensions import db
from portal.models import AuditAction, AuditEvent, ReleaseMode, ResultStatus, User
from portal.services import labs, settings
from portal.transactions import unit_of_work
from tests.conftest import Demo
from tests.support import app_config, at_once, new_database


def _delay_hematology(session: Session, admin: Actor) -> None:
    settings.set_category_rules(session, admin, True)
    settings.set_release_policy(
        session,
        admin,
        category="hematology",
        mode=ReleaseMode.AUTO_AFTER_DELAY,
        delay_hours=2,
        never_auto_release=False,
    )


def _publish_wbc(session: Session, chen: Actor, patient_id: int, value: str) -> int:
    data = labs.ResultInput(
        result_value=value, units=None, reference_range=None, status=ResultStatus.FINAL
    )
    result = labs.create_result(
        session, chen, patient_id, test_code="6690-2", test_name="White blood cells", data=data
    )
    return result.id


def _timer_releases(session: Session) -> int:
    stmt = (
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == AuditAction.RELEASE, AuditEvent.detail.contains('"timer"'))
    )
    return int(session.scalar(unscoped(stmt, "test: audit count")) or 0)


def test_a_delayed_result_is_released_by_the_worker_once_its_time_has_come(
    session: Session, people: Demo
) -> None:
    start = utcnow()
    set_clock(lambda: start)
    alice = people.user("alice").patient
    assert alice is not None
    with unit_of_work() as s:
        _delay_hematology(s, people.actor("admin"))
        _publish_wbc(s, people.actor("dr_chen"), alice.id, "7.2")
    before = _timer_releases(session)
    set_clock(lambda: start + timedelta(hours=1))
    assert jobs.run_once()["labs.release-due"] == 0
    set_clock(lambda: start + timedelta(hours=2, minutes=1))
    assert jobs.run_once()["labs.release-due"] == 1
    assert _timer_releases(session) == before + 1
    assert jobs.run_once()["labs.release-due"] == 0  # nothing twice


def test_workers_running_at_once_release_each_result_exactly_once(tmp_path) -> None:
    app: Flask = create_app(app_config(new_database(tmp_path, "jobs_at_once")))
    upgrade_database(app)
    start = utcnow()
    set_clock(lambda: start)
    with app.app_context():
        demo.seed(db.session)
        admin = Actor.of(db.session.scalar(select(User).where(User.email == "admin@example.org")))
        chen = Actor.of(db.session.scalar(select(User).where(User.email == "dr.chen@example.org")))
        alice = db.session.scalar(select(User).where(User.email == "alice@example.org"))
        assert alice is not None
        assert alice.patient is not None
        with unit_of_work() as s:
            _delay_hematology(s, admin)
            for n in range(5):
                _publish_wbc(s, chen, alice.patient.id, f"{6 + n}.0")
        before = _timer_releases(db.session)
    set_clock(lambda: start + timedelta(hours=3))

    def worker() -> None:
        with app.app_context():
            jobs.run_once()

    at_once(worker, 4)
    with app.app_context():
        assert _timer_releases(db.session) == before + 5
    app.extensions["portal.db"]["engine"].dispose()

"""Email notices: one per kind of event, with nothing about the patient's health in them, only
to patients who asked, sent by the worker exactly once, and retried when the server fails."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal import create_app, demo, jobs
from portal.access import unscoped
from portal.cli import upgrade_database
from portal.db import set_clock, utcnow
from portal.extensions import db
from portal.models import EventType, OutboxMail, PatientProfile, ResultStatus
from portal.services import labs, mail, messaging, notifications, profiles
from portal.transactions import unit_of_work
from tests.support import app_config, at_once, mails_in, new_database
from tests.unit.services.conftest import World

SECRET_WORDS = "Half-written worry about my biopsy"


def _mails(app: Flask) -> list[str]:
    return [m.text for m in mails_in(Path(app.config["MAIL_DIR"]))]


@pytest.fixture
def empty_outbox(app: Flask, session: Session) -> None:
    """Only this test's mail: the demo's own events staged some, and earlier tests sent some."""
    session.execute(unscoped(delete(OutboxMail), "test: an empty outbox"))
    for path in Path(app.config["MAIL_DIR"]).glob("*.eml"):
        path.unlink()


@pytest.mark.usefixtures("empty_outbox")
def test_each_kind_of_event_sends_a_notice_with_no_health_information(
    app: Flask, world: World
) -> None:
    alice = world.people.user("alice")
    profile = world.session.get(PatientProfile, world.patient_id)
    assert profile is not None
    address = profile.contact_email or alice.email
    with unit_of_work() as s:
        # The real paths for two kinds, with a test name, a value and a message body...
        labs.create_result(
            s,
            world.actor("dr_chen"),
            world.patient_id,
            test_code="21636-6",
            test_name="BRCA1 gene mutations",
            data=labs.ResultInput("Pathogenic variant detected", None, None, ResultStatus.FINAL),
        )
        messaging.reply(s, world.actor("dr_chen"), world.conversation_id, body=SECRET_WORDS)
        # ... and the notification staging itself for the other two (its text names things)
        for kind in (EventType.APPOINTMENT_UPDATED, EventType.TREATMENT_PLAN_UPDATED):
            notifications.stage(
                s,
                [alice.id],
                type=kind,
                entity_id=1,
                patient_id=world.patient_id,
                text="Diabetes plan: insulin 10 units",
            )
    # The BRCA1 result is released when published (no clinician holds it): its notice too.
    assert jobs.run_once()["mail.outbox"] == 4
    sent = _mails(app)
    assert len(sent) == 4
    for text in sent:
        assert f"To: {address}" in text
        for phi in (
            "BRCA1",
            "Pathogenic",
            "biopsy",
            SECRET_WORDS,
            "insulin",
            "Diabetes",
            "Alice",
            "MRN",
        ):
            assert phi not in text, (phi, text)
        assert app.config["PORTAL_URL"] in text
    assert {line for t in sent for line in t.splitlines() if line.startswith("Subject:")} == {
        f"Subject: {mail.NOTICES[k][0]}"
        for k in (
            EventType.LAB_RESULT_PUBLISHED,
            EventType.MESSAGE_CREATED,
            EventType.APPOINTMENT_UPDATED,
            EventType.TREATMENT_PLAN_UPDATED,
        )
    }
    assert jobs.run_once()["mail.outbox"] == 0  # sent once


@pytest.mark.usefixtures("empty_outbox")
def test_a_patient_who_did_not_ask_gets_no_mail(app: Flask, world: World, session: Session) -> None:
    profile = session.get(PatientProfile, world.patient_id)
    assert profile is not None
    profile.mail_messages = False  # the other kinds stay on: only this one is refused
    session.flush()
    with unit_of_work() as s:
        messaging.reply(s, world.actor("dr_chen"), world.conversation_id, body="Hello")
    jobs.run_once()
    assert _mails(app) == []


@pytest.mark.usefixtures("empty_outbox")
def test_a_second_message_before_the_first_notice_went_out_does_not_double_it(
    app: Flask, world: World
) -> None:
    with unit_of_work() as s:
        messaging.reply(s, world.actor("dr_chen"), world.conversation_id, body="One")
        messaging.reply(s, world.actor("dr_chen"), world.conversation_id, body="Two")
    jobs.run_once()
    assert len(_mails(app)) == 1


@pytest.mark.usefixtures("empty_outbox")
def test_a_mail_server_that_cannot_be_reached_is_tried_again_later(
    app: Flask, world: World, session: Session
) -> None:
    with unit_of_work() as s:
        messaging.reply(s, world.actor("dr_chen"), world.conversation_id, body="Hello")
    app.config["MAIL_URL"] = "smtp://127.0.0.1:9?tls=none"  # the discard port: refused
    try:
        assert jobs.run_once()["mail.outbox"] == 0
    finally:
        app.config["MAIL_URL"] = None
    [waiting] = session.scalars(select(OutboxMail)).all()
    session.refresh(waiting)
    assert (waiting.attempts, waiting.sent_at) == (1, None)
    assert waiting.next_attempt_at > utcnow()
    assert waiting.last_error == "ConnectionRefusedError"


def test_workers_running_at_once_send_each_mail_exactly_once(tmp_path) -> None:
    app = create_app(app_config(new_database(tmp_path, "mail_at_once")))
    upgrade_database(app)
    with app.app_context():
        demo.seed(db.session)  # stages the demo's own notices
        staged = db.session.scalars(select(OutboxMail)).all()
    waiting = len(staged)
    assert waiting > 0
    # All of them due, whatever clock the suite runs on and the demo left behind
    due = max(m.next_attempt_at for m in staged) + timedelta(minutes=1)
    set_clock(lambda: due)

    def worker() -> None:
        with app.app_context():
            jobs.run(next(j for j in jobs.JOBS if j.name == "mail.outbox"))

    at_once(worker, 4)
    assert len(list(Path(app.config["MAIL_DIR"]).glob("*.eml"))) == min(waiting, mail.BATCH)
    app.extensions["portal.db"]["engine"].dispose()


@pytest.mark.usefixtures("empty_outbox")
def test_a_provider_who_asked_hears_of_a_patients_message_and_nothing_more(
    app: Flask, world: World
) -> None:
    chen = world.people.user("dr_chen")
    with unit_of_work() as s:
        profiles.set_provider_mail(s, world.actor("dr_chen"), messages=True)
        messaging.reply(s, world.actor("alice"), world.conversation_id, body=SECRET_WORDS)
    jobs.run_once()
    [notice] = [m for m in mails_in(Path(app.config["MAIL_DIR"])) if m.to == chen.email]
    assert notice.subject == mail.NOTICES[EventType.MESSAGE_CREATED][0]
    for phi in (SECRET_WORDS, "Alice", "Martin"):
        assert phi not in notice.text

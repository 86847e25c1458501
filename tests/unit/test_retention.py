"""The retention purge removes whole threads past the clinic's period, audited, nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from portal.access import Actor, RoleScope, reader, unscoped
from portal.db import set_clock, utcnow
from portal.models import AuditAction, AuditEvent, ClinicSetting, Conversation, Message
from portal.services import messaging, retention, settings


@pytest.fixture
def short_floor(app: Flask) -> Iterator[None]:
    """The operator lowers the floor, so a 30-day period can be tried."""
    app.config["MESSAGE_RETENTION_MIN_DAYS"] = 30
    yield
    app.config["MESSAGE_RETENTION_MIN_DAYS"] = 2190


def _threads(session, people) -> int:  # alice's threads
    alice = people.actor("alice")
    stmt = select(func.count()).select_from(Conversation)
    return session.scalar(RoleScope(alice.role).scope(stmt, Conversation), reader(alice))


def _thread_ids(session, reader_: Actor) -> set[int]:
    stmt = RoleScope(reader_.role).scope(select(Conversation.id), Conversation)
    return set(session.scalars(stmt, reader(reader_)))


def test_nothing_is_purged_while_no_period_is_set(session) -> None:
    assert retention.purge_messages(session, utcnow() + timedelta(days=3650)) == 0


@pytest.mark.usefixtures("short_floor")
def test_threads_older_than_the_period_go_whole_and_are_audited(session, people) -> None:
    # Arrange: the demo thread's last message is 6 days old; a new thread comes 30 days later.
    settings.set_message_retention_days(session, people.actor("admin"), 30)
    alice = people.actor("alice")
    old_ids = _thread_ids(session, alice)
    assert old_ids
    start = utcnow()
    set_clock(lambda: start + timedelta(days=30))
    fresh = messaging.start_conversation(
        session,
        alice,
        patient_id=alice.patient_id,
        recipient_user_id=people.user("dr_chen").id,
        subject="Recent question",
        body="Sent later.",
    )
    # Act: 40 days on, the demo thread is past 30 days, the new one is 10 days old.
    set_clock(lambda: start + timedelta(days=40))
    purged = retention.purge_messages(session)
    # Assert
    remaining = _thread_ids(session, alice)
    assert remaining == {fresh.conversation_id}
    assert purged >= len(old_ids)
    orphans = session.scalar(
        unscoped(
            select(func.count())
            .select_from(Message)
            .where(~Message.conversation_id.in_(select(Conversation.id))),
            "test",
        )
    )
    assert orphans == 0
    entries = session.scalars(
        select(AuditEvent).where(AuditEvent.action == AuditAction.DELETE)
    ).all()
    assert len(entries) == purged
    assert {int(e.entity_id) for e in entries} >= old_ids


@pytest.mark.usefixtures("short_floor")
def test_a_thread_inside_the_period_stays(session, people) -> None:
    settings.set_message_retention_days(session, people.actor("admin"), 30)
    before = _threads(session, people)
    assert retention.purge_messages(session) == 0
    assert _threads(session, people) == before


def test_the_purge_command_reports_its_count(app, connection) -> None:
    result = app.test_cli_runner().invoke(args=["messages", "purge"])
    assert result.exit_code == 0, result.output
    assert "Purged 0 conversations" in result.output


def test_one_admin_cannot_set_a_period_below_the_operators_floor(session, people) -> None:
    # L9 (docs/security.md): the floor (six years unless the operator lowers it)
    with pytest.raises(settings.SettingError, match="from 2190"):
        settings.set_message_retention_days(session, people.actor("admin"), 30)
    # ... and a short period stored anyway (behind the app's back) deletes nothing younger
    session.add(ClinicSetting(key=settings.MESSAGE_RETENTION_DAYS, value="30"))
    session.flush()
    before = _threads(session, people)
    assert retention.purge_messages(session, utcnow() + timedelta(days=400)) == 0
    assert _threads(session, people) == before

"""Shared fixtures of the web tests."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.db import utcnow
from portal.models import (
    Appointment,
    Attachment,
    Conversation,
    LabResult,
    Notification,
    PlanStatus,
    TreatmentPlan,
)
from portal.services import schedule
from tests.conftest import Demo


def _first(session: Session, stmt):  # type: ignore[no-untyped-def]
    row = session.scalar(unscoped(stmt.limit(1), "test fixtures"))
    assert row is not None
    return row


@pytest.fixture
def alice_records(session: Session, people: Demo) -> dict[str, object]:
    """One of each of alice's records (and dr.chen's schedule rows), by URL argument name."""
    pid = people.user("alice").patient.id
    chen = people.actor("dr_chen")
    rule = schedule.add_rule(
        session, chen, weekday=6, start_minute=600, end_minute=660, slot_minutes=30, location=None
    )
    day_off = schedule.add_exception(
        session, chen, day=utcnow().date() + timedelta(days=40), reason=None, today=utcnow().date()
    )
    attachment = _first(session, select(Attachment).where(Attachment.patient_id == pid))
    session.commit()
    return {
        "patient_id": pid,
        "result_id": _first(session, select(LabResult.id).where(LabResult.patient_id == pid)),
        "plan_id": _first(
            session,
            select(TreatmentPlan.id).where(
                TreatmentPlan.patient_id == pid, TreatmentPlan.status == PlanStatus.DRAFT
            ),
        ),
        "conversation_id": _first(
            session, select(Conversation.id).where(Conversation.patient_id == pid)
        ),
        "appointment_id": _first(
            session,
            select(Appointment.id).where(
                Appointment.patient_id == pid, Appointment.start_at > utcnow()
            ),
        ),
        "attachment_id": attachment.id,
        "rule_id": rule.id,
        "exception_id": day_off.id,
        "provider_id": chen.provider_id,
        "user_id": people.user("alice").id,
        # Rows no page needs to exist for the area gates (admin tools: a waiting care-team
        # assignment, a user's session).
        "request_id": 1,
        "session_id": 1,
        # dr.chen's own notification about alice (opening one leads on to its record).
        "event_id": _first(
            session,
            select(Notification.id).where(
                Notification.user_id == chen.user_id, Notification.patient_id == pid
            ),
        ),
    }

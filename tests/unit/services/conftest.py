"""Fixtures of the service tests: the demo records a verb needs, found once per test."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from portal.access import Actor, unscoped
from portal.db import utcnow
from portal.models import (
    Appointment,
    AppointmentStatus,
    Conversation,
    LabResult,
    LabResultVersion,
    PlanStatus,
    TreatmentPlan,
)
from tests.conftest import Demo


def first(session: Session, stmt: Select[Any]) -> Any:
    """The first row of `stmt`, read past scoping (fixtures, not a reader); it must exist."""
    row = session.scalar(unscoped(stmt.limit(1), "test fixtures"))
    assert row is not None, f"demo data has no row for {stmt}"
    return row


@dataclass
class World:
    """Alice's records and her care team, as the demo seeds them."""

    session: Session
    people: Demo
    patient_id: int
    chen_provider_id: int
    okafor_provider_id: int
    published_result_id: int
    held_result_id: int
    draft_plan_id: int
    active_plan_id: int
    conversation_id: int
    upcoming_visit_id: int

    def actor(self, name: str) -> Actor:
        return self.people.actor(name)

    @property
    def today(self) -> date:
        return utcnow().date()

    def published_version(self) -> LabResultVersion:
        return first(
            self.session,
            select(LabResultVersion).where(
                LabResultVersion.lab_result_id == self.published_result_id
            ),
        )


@pytest.fixture
def world(session: Session, people: Demo) -> World:
    alice = people.user("alice").patient
    assert alice is not None
    pid = alice.id
    chen = people.actor("dr_chen")
    okafor = people.actor("dr_okafor")
    assert chen.provider_id is not None
    assert okafor.provider_id is not None
    return World(
        session=session,
        people=people,
        patient_id=pid,
        chen_provider_id=chen.provider_id,
        okafor_provider_id=okafor.provider_id,
        published_result_id=first(
            session,
            select(LabResult.id).where(
                LabResult.patient_id == pid,
                LabResult.test_code == "3016-3",  # TSH: published, shared, released
            ),
        ),
        held_result_id=first(
            session,
            select(LabResult.id).where(
                LabResult.patient_id == pid,
                LabResult.test_code == "21636-6",  # genetic: held for review
            ),
        ),
        draft_plan_id=first(
            session,
            select(TreatmentPlan.id).where(
                TreatmentPlan.patient_id == pid, TreatmentPlan.status == PlanStatus.DRAFT
            ),
        ),
        active_plan_id=first(
            session,
            select(TreatmentPlan.id).where(
                TreatmentPlan.patient_id == pid, TreatmentPlan.status == PlanStatus.ACTIVE
            ),
        ),
        conversation_id=first(
            session, select(Conversation.id).where(Conversation.patient_id == pid)
        ),
        upcoming_visit_id=first(
            session,
            select(Appointment.id).where(
                Appointment.patient_id == pid,
                Appointment.status == AppointmentStatus.SCHEDULED,
                Appointment.start_at > utcnow(),
            ),
        ),
    )

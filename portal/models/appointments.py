"""Appointments and the providers' weekly availability from which patients book."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, Timestamps, intpk
from portal.models.owned import PatientOwned


class AppointmentStatus(enum.StrEnum):
    REQUESTED = "requested"
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"


#: The statuses of a visit that holds its provider's slot: no one else may book that time.
HOLDS_SLOT = (AppointmentStatus.REQUESTED, AppointmentStatus.SCHEDULED)
_HOLDS_SLOT_SQL = text("status IN ({})".format(", ".join(f"'{s.value}'" for s in HOLDS_SLOT)))


class Appointment(PatientOwned, Timestamps, Base):
    __tablename__ = "appointment"
    id: Mapped[intpk]
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient_profile.id"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider_profile.id"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    location: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[AppointmentStatus] = mapped_column(default=AppointmentStatus.REQUESTED)

    @property
    def is_requested(self) -> bool:
        return self.status is AppointmentStatus.REQUESTED

    @property
    def is_cancelled(self) -> bool:
        return self.status is AppointmentStatus.CANCELLED

    cancel_reason: Mapped[str | None] = mapped_column(Text)
    booked_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    #: A request to move a confirmed visit: that visit, which stands until this one is
    #: confirmed (then it is cancelled as moved) and after it is declined.
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"))

    @property
    def is_a_move(self) -> bool:
        return self.replaces_id is not None

    #: The provider who answered the request with another time: it waits for the patient to
    #: accept it (or cancel), and leaves the provider's queue.
    proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    @property
    def awaits_patient(self) -> bool:
        return self.status is AppointmentStatus.REQUESTED and self.proposed_by_id is not None

    __table_args__ = (
        CheckConstraint("end_at > start_at", name="ends_after_start"),
        Index("ix_appointment_patient_start", "patient_id", "start_at"),
        Index("ix_appointment_provider_start", "provider_id", "start_at"),
        # One active visit per provider and start, whoever wins a race between two bookings
        # that both saw the slot open (migration 0005).
        Index(
            "uq_appointment_provider_start_active",
            "provider_id",
            "start_at",
            unique=True,
            postgresql_where=_HOLDS_SLOT_SQL,
            sqlite_where=_HOLDS_SLOT_SQL,
        ),
    )


class AvailabilityRule(Timestamps, Base):
    """A provider's weekly bookable hours: weekday 0 = Monday, minutes from midnight on
    the clinic's clocks (portal.zones), whatever their offset that day."""

    __tablename__ = "availability_rule"
    id: Mapped[intpk]
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider_profile.id"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)
    slot_minutes: Mapped[int] = mapped_column(Integer, default=30)
    location: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("end_minute > start_minute", name="ends_after_start"),
    )


class AvailabilityException(Timestamps, Base):
    """A day a provider is not bookable (leave, training)."""

    __tablename__ = "availability_exception"
    id: Mapped[intpk]
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider_profile.id"), index=True)
    day: Mapped[date]
    reason: Mapped[str | None] = mapped_column(String(200))

"""Stored events for one user: the dashboard's "new", the badge and the WebSocket all read these."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, created_at, intpk


class EventType(enum.StrEnum):
    MESSAGE_CREATED = "message.created"
    LAB_RESULT_PUBLISHED = "lab_result.published"
    TREATMENT_PLAN_UPDATED = "treatment_plan.updated"
    APPOINTMENT_UPDATED = "appointment.updated"


class Notification(Base):
    __tablename__ = "notification"
    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient_profile.id"))
    type: Mapped[EventType]
    entity_id: Mapped[int] = mapped_column(Integer)
    #: A short line shown in the app; never sent to logs or e-mail.
    text: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[created_at]
    read_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_notification_user_id", "user_id", "id"),
        Index("ix_notification_user_unread", "user_id", "read_at", "type"),
    )

"""Treatment plans with a lifecycle, their versions and the patient's acknowledgements."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, Timestamps, created_at, intpk
from portal.models.owned import PatientOwned, write_once


class PlanStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    COMPLETED = "completed"


class TreatmentPlan(PatientOwned, Timestamps, Base):
    """A plan for one patient; its text lives in versions, the newest mirrored here for lists."""

    __tablename__ = "treatment_plan"
    id: Mapped[intpk]
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient_profile.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    status: Mapped[PlanStatus] = mapped_column(default=PlanStatus.DRAFT)

    # What templates ask of a plan's status, as booleans (never its stored string).
    @property
    def is_draft(self) -> bool:
        return self.status is PlanStatus.DRAFT

    @property
    def is_active(self) -> bool:
        return self.status is PlanStatus.ACTIVE

    @property
    def is_completed(self) -> bool:
        return self.status is PlanStatus.COMPLETED

    current_version: Mapped[int] = mapped_column(Integer, default=1)
    summary: Mapped[str] = mapped_column(String(300))
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]
    activated_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_treatment_plan_patient_status", "patient_id", "status"),)


class TreatmentPlanVersion(PatientOwned, Base):
    """One immutable version of a plan's content, with the status it had when saved."""

    __tablename__ = "treatment_plan_version"
    id: Mapped[intpk]
    plan_id: Mapped[int] = mapped_column(ForeignKey("treatment_plan.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient_profile.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[PlanStatus]

    @property
    def is_draft(self) -> bool:
        return self.status is PlanStatus.DRAFT

    summary: Mapped[str] = mapped_column(String(300))
    details: Mapped[str] = mapped_column(Text, default="")
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    change_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created_at]

    __table_args__ = (UniqueConstraint("plan_id", "version"),)


class PlanAcknowledgement(PatientOwned, Base):
    """The patient confirmed reading one version of a plan."""

    __tablename__ = "plan_acknowledgement"
    id: Mapped[intpk]
    plan_version_id: Mapped[int] = mapped_column(ForeignKey("treatment_plan_version.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient_profile.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    acknowledged_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("plan_version_id"),)


write_once(TreatmentPlanVersion)
write_once(PlanAcknowledgement)

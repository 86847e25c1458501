"""Lab results and their immutable versions, and the clinic's release policy."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, Timestamps, created_at, intpk
from portal.models.owned import PatientOwned, write_once


class ResultStatus(enum.StrEnum):
    PRELIMINARY = "preliminary"
    FINAL = "final"
    CORRECTED = "corrected"
    AMENDED = "amended"
    CANCELLED = "cancelled"


class Visibility(enum.StrEnum):
    SHARED = "shared"
    PROVIDER_ONLY = "provider_only"


class Flag(enum.StrEnum):
    """How a value sits against its reference range; always shown as text."""

    NORMAL = "normal"
    LOW = "low"
    HIGH = "high"
    CRITICAL_LOW = "critical_low"
    CRITICAL_HIGH = "critical_high"
    ABNORMAL = "abnormal"
    UNKNOWN = "unknown"


class ReleaseMode(enum.StrEnum):
    ON_PUBLISH = "on_publish"
    HOLD_FOR_REVIEW = "hold_for_review"
    AUTO_AFTER_DELAY = "auto_after_delay"


class LabResult(PatientOwned, Timestamps, Base):
    """One ordered test for one patient. Its content lives in `LabResultVersion` rows."""

    __tablename__ = "lab_result"
    id: Mapped[intpk]
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient_profile.id"))
    test_code: Mapped[str] = mapped_column(String(32))
    test_name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40), default="general")
    ordered_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    #: The newest version number (what providers see).
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    #: The newest version the patient may see, or None while none is released to them.
    shared_version: Mapped[int | None] = mapped_column(Integer)
    #: When that version was released: the patient's list sorts on it.
    shared_at: Mapped[datetime | None]
    #: When the newest version was published (None while only preliminary).
    published_at: Mapped[datetime | None]
    #: When the sample was taken: where the result belongs in time. Lists, trends and the
    #: dashboard order on it, so a later correction never moves a result forward.
    collected_at: Mapped[datetime]
    #: A clinician's hold on this result (45 CFR 171.201, preventing harm): who placed it, the
    #: harm it prevents (required), and when it ends. While `held_until` is ahead, no version
    #: reaches the patient without a review; at that moment the hold lapses on its own.
    held_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    hold_reason: Mapped[str | None] = mapped_column(Text)
    held_until: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_lab_result_patient_shared", "patient_id", "shared_at"),
        Index("ix_lab_result_patient_updated", "patient_id", "updated_at"),
        Index("ix_lab_result_patient_test", "patient_id", "test_code"),
        Index("ix_lab_result_patient_collected", "patient_id", "collected_at", "id"),
    )


class LabResultVersion(PatientOwned, Base):
    """One immutable version of a result; a correction or amendment adds a new one."""

    __tablename__ = "lab_result_version"
    id: Mapped[intpk]
    lab_result_id: Mapped[int] = mapped_column(ForeignKey("lab_result.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient_profile.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    result_value: Mapped[str] = mapped_column(String(200))
    units: Mapped[str | None] = mapped_column(String(40))
    reference_range: Mapped[str | None] = mapped_column(String(80))
    #: Numeric parse of the value and range, when they are numbers (trend charts, flags).
    numeric_value: Mapped[float | None] = mapped_column(Float)
    reference_low: Mapped[float | None] = mapped_column(Float)
    reference_high: Mapped[float | None] = mapped_column(Float)
    flag: Mapped[Flag] = mapped_column(default=Flag.UNKNOWN)
    status: Mapped[ResultStatus]

    @property
    def is_preliminary(self) -> bool:
        return self.status is ResultStatus.PRELIMINARY

    @property
    def is_corrected(self) -> bool:
        return self.status is ResultStatus.CORRECTED

    @property
    def is_amended(self) -> bool:
        return self.status is ResultStatus.AMENDED

    visibility: Mapped[Visibility] = mapped_column(default=Visibility.SHARED)
    #: Why this version exists, for corrections and amendments.
    change_reason: Mapped[str | None] = mapped_column(Text)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    published_at: Mapped[datetime | None]
    #: Release to the patient: set once by publish, review or timer (the only later write).
    release_due_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    reviewed_at: Mapped[datetime | None]
    created_at: Mapped[created_at]

    __table_args__ = (
        UniqueConstraint("lab_result_id", "version"),
        Index("ix_lab_result_version_pending_release", "released_at", "release_due_at"),
    )


# A version's content never changes; release and review are each recorded once.
write_once(
    LabResultVersion,
    settable=frozenset({"released_at", "reviewed_by_id", "reviewed_at"}),
    # When the timer may release it: follows the category's policy as it changes.
    mutable=frozenset({"release_due_at"}),
)


class ReleasePolicy(Timestamps, Base):
    """Per test category, when a published result reaches the patient."""

    __tablename__ = "release_policy"
    id: Mapped[intpk]
    category: Mapped[str] = mapped_column(String(40), unique=True)
    mode: Mapped[ReleaseMode] = mapped_column(default=ReleaseMode.ON_PUBLISH)
    delay_hours: Mapped[int | None] = mapped_column(Integer)
    #: Sensitive categories (e.g. genetic tests) never auto-release, whatever the mode.
    never_auto_release: Mapped[bool] = mapped_column(Boolean, default=False)

"""Proxy access: a person allowed to open another patient's record, within a grant."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, Timestamps, intpk
from portal.models.owned import PatientOwned


class ProxyRelationship(enum.StrEnum):
    PARENT = "parent"
    GUARDIAN = "guardian"
    CAREGIVER = "caregiver"
    OTHER = "other"


#: Who holds a parent's or guardian's access: it follows the rules for minors and ends at 18.
PARENTAL = frozenset({ProxyRelationship.PARENT, ProxyRelationship.GUARDIAN})


class ProxyScope(enum.StrEnum):
    """What part of the record a grant opens (the names clients use)."""

    LAB_RESULTS = "lab-results"
    TREATMENT_PLANS = "treatment-plans"
    MESSAGES = "messages"
    APPOINTMENTS = "appointments"
    RECORD = "record"


class ProxyGrant(PatientOwned, Timestamps, Base):
    """`proxy_user_id` may open patient `patient_id`'s record within `scopes`, from
    `starts_at` until `ends_at` (or until `ended_at`, when someone ended it early)."""

    __tablename__ = "proxy_grant"
    id: Mapped[intpk]
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient_profile.id"))
    proxy_user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    relationship: Mapped[ProxyRelationship]
    #: Why the proxy may act: "the patient's own invitation", "parental responsibility", ...
    legal_basis: Mapped[str] = mapped_column(String(200))
    #: The scopes, space-separated (`ProxyScope` values), as OAuth writes scopes.
    scopes: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    granted_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    ended_at: Mapped[datetime | None]
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    end_reason: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="period"),
        # The identity check on every request of a proxy: their grants that have not ended.
        Index("ix_proxy_grant_proxy_ended", "proxy_user_id", "ended_at"),
        Index("ix_proxy_grant_patient", "patient_id"),
    )

    @property
    def scope_set(self) -> frozenset[ProxyScope]:
        return frozenset(ProxyScope(s) for s in self.scopes.split())

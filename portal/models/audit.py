"""The append-only, hash-chained audit log."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, intpk


class AuditAction(enum.StrEnum):
    VIEW = "view"
    CREATE = "create"
    UPDATE = "update"
    PUBLISH = "publish"
    CORRECT = "correct"
    RELEASE = "release"
    REVIEW = "review"
    ACKNOWLEDGE = "acknowledge"
    DOWNLOAD = "download"
    SEND = "send"
    CANCEL = "cancel"
    ACTIVATE = "activate"
    COMPLETE = "complete"
    ASSIGN = "assign"
    UNASSIGN = "unassign"
    DEACTIVATE = "deactivate"
    EXPORT = "export"
    DELETE = "delete"
    SIGN_IN = "sign_in"
    SIGN_IN_FAILED = "sign_in_failed"
    SIGN_OUT = "sign_out"
    PASSWORD_CHANGE = "password_change"  # noqa: S105  (an action name)
    ACCESS_DENIED = "access_denied"


class AuditOutcome(enum.StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    FAILURE = "failure"


class AuditEvent(Base):
    """Who did what to which record of which patient. Rows are never deleted, and never
    changed but for their seal, filled once by the sealer."""

    __tablename__ = "audit_event"
    id: Mapped[intpk]
    occurred_at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    actor_role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[AuditAction]
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient_profile.id"))
    outcome: Mapped[AuditOutcome] = mapped_column(default=AuditOutcome.SUCCESS)
    request_id: Mapped[str | None] = mapped_column(String(64))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    #: Context (e.g. which version, the reason code), canonical JSON; no clinical content. An
    #: admin's edit of an account or of demographics keeps the changed fields before and after.
    detail: Mapped[str] = mapped_column(Text, default="{}")
    # The seal: filled once, by the sealer (`portal.audit.chain.seal`), shortly after the entry
    # committed; until then all four are null (the database lets nothing else change).
    #: The entry's position in the chain (1, 2, ...): chain order is sealing order, which
    #: follows commit order, not id order.
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    #: The id of the HMAC key that signed this entry (`portal.audit.keys`); null on entries
    #: from before the chain was keyed, whose hash is plain SHA-256.
    key_id: Mapped[str | None] = mapped_column(String(16))
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64), unique=True)

    __table_args__ = (
        # The report and the access log list one patient's entries newest (highest id) first.
        Index("ix_audit_event_patient_id", "patient_id", "id"),
        Index("ix_audit_event_actor_time", "actor_id", "occurred_at"),
        Index("ix_audit_event_action_time", "action", "occurred_at"),
        Index("ix_audit_event_time", "occurred_at"),
        # Who changed an address or brought an account in (`accounts.check_not_introduced_by`).
        Index("ix_audit_event_entity", "entity_type", "entity_id"),
        # The sealer's queue: entries not yet in the chain.
        Index(
            "ix_audit_event_unsealed",
            "id",
            sqlite_where=text("seq IS NULL"),
            postgresql_where=text("seq IS NULL"),
        ),
    )

"""The append-only, hash-chained audit log."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, text
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


class Entity(enum.StrEnum):
    """What an audit entry is about: a kind of record, a screen of them, or a change of one
    field (`user_account.email`). Stored as its value; the access log and the admin report
    name each one in words (`audit.report`)."""

    ACTIVATION_CODE = "activation_code"
    APPOINTMENT = "appointment"
    APPOINTMENT_LIST = "appointment_list"
    ATTACHMENT = "attachment"
    AUDIT_LOG = "audit_log"
    AVAILABILITY_EXCEPTION = "availability_exception"
    AVAILABILITY_RULE = "availability_rule"
    CARE_ASSIGNMENT = "care_assignment"
    CARE_ASSIGNMENT_REQUEST = "care_assignment_request"
    CARE_TEAM = "care_team"
    CLINIC_SETTING = "clinic_setting"
    CONVERSATION = "conversation"
    CONVERSATION_LIST = "conversation_list"
    DASHBOARD = "dashboard"
    INVITATION = "invitation"
    LAB_RESULT = "lab_result"
    LAB_RESULT_LIST = "lab_result_list"
    MESSAGE = "message"
    NOTIFICATION = "notification"
    NOTIFICATION_LIST = "notification_list"
    PASSWORD_RESET = "password_reset"  # noqa: S105  (the name of a kind of record)
    PATIENT_LIST = "patient_list"
    PATIENT_PROFILE = "patient_profile"
    #: A patient's contact address changed (the "no one person alone" rules follow it).
    PATIENT_CONTACT_EMAIL = "patient_profile.contact_email"
    #: A patient's whole record: the printable summary, the download.
    PATIENT_RECORD = "patient_record"
    PROVIDER_PROFILE = "provider_profile"
    #: A grant to open another patient's record (`ProxyGrant`).
    PROXY_GRANT = "proxy_grant"
    RELEASE_POLICY = "release_policy"
    #: An account's sign-in pause (failed attempts counted against its address).
    SIGN_IN_THROTTLE = "sign_in_throttle"
    TREATMENT_PLAN = "treatment_plan"
    TREATMENT_PLAN_LIST = "treatment_plan_list"
    TWO_FACTOR = "two_factor"
    USER_ACCOUNT = "user_account"
    #: An account's sign-in address changed.
    USER_EMAIL = "user_account.email"
    USER_LIST = "user_list"
    USER_SESSION = "user_session"


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
    #: The application's signature of the entry as written (HMAC-SHA256 of its content with a
    #: key derived from AUDIT_KEY, `portal.audit.chain.entry_mac`): the sealer seals only an
    #: entry that carries a valid one, so a row inserted straight into the table is refused.
    mac: Mapped[str | None] = mapped_column(String(64))
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


class AuditChainStart(Base):
    """Where the chain began to be keyed: one row, written by migration 0018 and never changed
    (triggers refuse UPDATE and DELETE). From position `keyed_from` on, the database refuses an
    unkeyed seal and `verify` an unkeyed entry, so a chain rewritten with plain SHA-256 (which
    anyone can compute) never passes, even on a database created after keying began."""

    __tablename__ = "audit_chain_start"
    id: Mapped[int] = mapped_column(primary_key=True)
    #: The first chain position that must be keyed (1 on a database created keyed).
    keyed_from: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime]

    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

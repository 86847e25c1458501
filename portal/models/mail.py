"""Mail waiting to be sent: written in the same transaction as what it tells of, sent by the
background worker (`portal.services.mail`). Its words are fixed per kind and carry no health
information (no test, value, diagnosis, message subject or body); only the address is personal."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, created_at, intpk


class OutboxMail(Base):
    __tablename__ = "mail_outbox"
    id: Mapped[intpk]
    #: Empty for a patient who has no sign-in yet (their activation code).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    to_address: Mapped[str] = mapped_column(String(254))
    #: What it tells of: an event type ("lab_result.published") or an account notice.
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[created_at]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    #: Why the last attempt failed, as the mail server said it (a code, never the mail).
    last_error: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_mail_outbox_due", "sent_at", "next_attempt_at"),)

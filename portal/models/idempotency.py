"""Answers to POSTs sent with an `Idempotency-Key`: a retry gets the first answer back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, intpk


class IdempotentRequest(Base):
    """The first answer to one user's request under one key, stored with the change it made
    (same transaction), so a retry can neither repeat the change nor get another answer."""

    __tablename__ = "idempotent_request"
    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    key: Mapped[str] = mapped_column(String(255))
    #: SHA-256 of the method, path and body: the same key with another request is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    #: The response body as sent (no PHI beyond what the caller was shown; ids mostly).
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("user_id", "key"),)

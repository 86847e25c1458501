"""Signed-in sessions, kept on the server so that signing out ends them for good."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, intpk


class AuthMethod(enum.StrEnum):
    """How a caller proved who they are; `portal.access` decides what each may do."""

    SESSION = "session"  # the sign-in page: a browser cookie
    TOKEN = "token"  # noqa: S105 - a bearer token (JSON API), not a secret


class UserSession(Base):
    """One signed-in browser or app. The cookie or token holds a random secret; only its
    SHA-256 is stored, so a copy of this table signs nobody in."""

    __tablename__ = "user_session"
    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    method: Mapped[AuthMethod]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: A coarse description of the client ("Firefox on Linux"), never the full user agent.
    client: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    #: Why it ended: "sign_out", "password_change", "deactivated", "signed_out_elsewhere", ...
    revoked_reason: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (Index("ix_user_session_user_revoked", "user_id", "revoked_at"),)

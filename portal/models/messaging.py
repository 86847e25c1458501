"""Conversations between a patient and their care team, messages and attachments."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, Timestamps, created_at, intpk
from portal.models.owned import PatientOwned, write_once


class MessageStatus(enum.StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"


class Conversation(PatientOwned, Timestamps, Base):
    """A thread about one patient."""

    __tablename__ = "conversation"
    id: Mapped[intpk]
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient_profile.id"))
    subject: Mapped[str] = mapped_column(String(200))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    last_message_at: Mapped[datetime]
    #: Set when the last clinician on it left the patient's care team and nobody was left to
    #: take it over: the thread stays readable, and takes no more replies.
    closed_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_conversation_patient_last", "patient_id", "last_message_at"),)


class ConversationParticipant(Base):
    """Who takes part in a thread; a user's inbox is read through this table."""

    __tablename__ = "conversation_participant"
    id: Mapped[intpk]
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))

    __table_args__ = (
        UniqueConstraint("conversation_id", "user_id"),
        Index("ix_conversation_participant_user", "user_id", "conversation_id"),
    )


class Message(PatientOwned, Base):
    __tablename__ = "message"
    id: Mapped[intpk]
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient_profile.id"), index=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[MessageStatus] = mapped_column(default=MessageStatus.SENT)

    @property
    def is_delivered(self) -> bool:
        return self.status is MessageStatus.DELIVERED

    sent_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    #: A retried or double-clicked send carries the same key and creates one message.
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[created_at]

    __table_args__ = (
        UniqueConstraint("sender_id", "idempotency_key"),
        Index("ix_message_conversation_sent", "conversation_id", "sent_at"),
        Index("ix_message_recipient_status", "recipient_id", "status"),
    )


class Attachment(PatientOwned, Base):
    """A file on a message or a lab result version, encrypted at rest with ATTACHMENT_KEY."""

    __tablename__ = "attachment"
    id: Mapped[intpk]
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient_profile.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"), index=True)
    lab_result_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("lab_result_version.id"), index=True
    )
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    #: nonce + AES-GCM ciphertext, sealed as `seal_version` says (services.attachments)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    #: Random, per row: the sealed blob authenticates it (with the patient), so a blob copied
    #: into another row fails to decrypt. None for rows sealed before it existed (version 1).
    blob_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    seal_version: Mapped[int] = mapped_column(Integer, default=1)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[created_at]


__all__ = ["Attachment", "Conversation", "ConversationParticipant", "Message", "MessageStatus"]


write_once(Attachment, settable=frozenset({"message_id", "lab_result_version_id"}))

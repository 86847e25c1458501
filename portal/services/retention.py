"""Enforcing the clinic's message retention period: whole threads older than it are removed."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal import audit
from portal.access import unscoped
from portal.db import utcnow
from portal.models import (
    Attachment,
    AuditAction,
    Conversation,
    ConversationParticipant,
    Entity,
    EventType,
    Message,
    Notification,
)
from portal.services import settings


def purge_messages(session: Session, now: datetime | None = None) -> int:
    """Delete threads whose last message is older than the retention period; returns how many.

    A thread goes whole (messages, their attachments, participants and notifications), so no
    conversation is left half-readable. Each removal is audited. Versions and attachments are
    write-once for the application; this job is the one deliberate exception, so it deletes
    with bulk statements rather than through the ORM.
    """
    days = settings.message_retention_days(session)
    if days is None:
        return 0
    # A period stored below the floor (set before it, or written behind the app's back)
    # deletes no more than the floor allows.
    days = max(days, settings.retention_floor())
    cutoff = (now or utcnow()) - timedelta(days=days)
    old = session.execute(
        unscoped(
            select(Conversation.id, Conversation.patient_id).where(
                Conversation.last_message_at < cutoff
            ),
            "retention purge",
        )
    ).all()
    bulk = {"synchronize_session": False}  # nothing of these threads is loaded in the session
    for conversation_id, patient_id in old:
        message_ids = select(Message.id).where(Message.conversation_id == conversation_id)
        session.execute(
            delete(Attachment).where(Attachment.message_id.in_(message_ids)),
            execution_options=bulk,
        )
        session.execute(
            delete(Message).where(Message.conversation_id == conversation_id),
            execution_options=bulk,
        )
        session.execute(
            delete(ConversationParticipant).where(
                ConversationParticipant.conversation_id == conversation_id
            ),
            execution_options=bulk,
        )
        session.execute(
            delete(Notification).where(
                Notification.type == EventType.MESSAGE_CREATED,
                Notification.entity_id == conversation_id,
            ),
            execution_options=bulk,
        )
        session.execute(
            delete(Conversation).where(Conversation.id == conversation_id),
            execution_options=bulk,
        )
        audit.record(
            session,
            None,
            AuditAction.DELETE,
            Entity.CONVERSATION,
            conversation_id,
            patient_id=patient_id,
            detail={"reason": "retention", "retention_days": days},
            by="system",
        )
    session.flush()
    return len(old)

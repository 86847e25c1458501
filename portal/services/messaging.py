"""Secure messages between a patient and their care team."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import audit
from portal.access import Actor, Permission, get_or_404, require, scope
from portal.db import utcnow
from portal.models import (
    AuditAction,
    CareAssignment,
    Conversation,
    ConversationParticipant,
    EventType,
    Message,
    MessageStatus,
    PatientProfile,
    ProviderProfile,
    Role,
)
from portal.services import attachments, notifications

MAX_BODY = 20_000


class MessageError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def care_team(session: Session, actor: Actor, patient_id: int) -> list[ProviderProfile]:
    """The providers currently caring for a patient the actor may see."""
    patient = get_or_404(session, PatientProfile, patient_id, actor)
    stmt = (
        select(ProviderProfile)
        .join(CareAssignment, CareAssignment.provider_id == ProviderProfile.id)
        .where(CareAssignment.patient_id == patient.id, CareAssignment.ended_at.is_(None))
        .order_by(ProviderProfile.display_name)
    )
    return list(session.scalars(stmt))


def _check_body(body: str) -> str:
    if not body.strip():
        raise MessageError("body", "Write a message.")
    if len(body) > MAX_BODY:
        raise MessageError("body", f"Messages can be at most {MAX_BODY:,} characters.")
    return body


def _post(
    session: Session,
    actor: Actor,
    conversation: Conversation,
    recipient_id: int,
    body: str,
    uploads: list[attachments.Upload],
    idempotency_key: str | None,
) -> Message:
    if idempotency_key:
        existing = session.scalar(
            scope(
                select(Message).where(
                    Message.sender_id == actor.user_id, Message.idempotency_key == idempotency_key
                ),
                Message,
                actor,
            )
        )
        if existing is not None:
            return existing
    now = utcnow()
    rows = [
        attachments.build(u, patient_id=conversation.patient_id, uploaded_by_id=actor.user_id)
        for u in uploads
    ]
    message = Message(
        conversation_id=conversation.id,
        patient_id=conversation.patient_id,
        sender_id=actor.user_id,
        recipient_id=recipient_id,
        body=body,
        sent_at=now,
        idempotency_key=idempotency_key or None,
    )
    try:
        with session.begin_nested():
            session.add(message)
            session.flush()
    except IntegrityError:
        # A concurrent retry with the same key won the race: answer with its message.
        existing = session.scalar(
            scope(
                select(Message).where(
                    Message.sender_id == actor.user_id, Message.idempotency_key == idempotency_key
                ),
                Message,
                actor,
            )
        )
        if existing is None:
            raise
        return existing
    for row in rows:
        row.message_id = message.id
        session.add(row)
    conversation.last_message_at = now
    audit.record(
        session,
        actor_id=actor.user_id,
        actor_role=actor.role,
        action=AuditAction.SEND,
        entity_type="message",
        entity_id=message.id,
        patient_id=conversation.patient_id,
        detail={"attachments": len(rows)},
    )
    notifications.stage(
        session,
        [recipient_id],
        type=EventType.MESSAGE_CREATED,
        entity_id=conversation.id,
        patient_id=conversation.patient_id,
        text=f"New message: {conversation.subject}",
    )
    session.flush()
    return message


def start_conversation(
    session: Session,
    actor: Actor,
    *,
    patient_id: int,
    recipient_user_id: int,
    subject: str,
    body: str,
    uploads: list[attachments.Upload] | None = None,
    idempotency_key: str | None = None,
) -> Message:
    """A new thread about a patient, between the patient and one of their care team."""
    require(actor, Permission.MESSAGE_SEND)
    patient = get_or_404(session, PatientProfile, patient_id, actor)
    if not subject.strip():
        raise MessageError("subject", "Enter a subject.")
    body = _check_body(body)
    team_users = {p.user_id for p in care_team(session, actor, patient.id)}
    if actor.role is Role.PATIENT:
        if recipient_user_id not in team_users:
            raise MessageError("to", "Choose someone from your care team.")
    elif recipient_user_id != patient.user_id or patient.user_id is None:
        raise MessageError("to", "This patient has no portal account yet.")
    conversation = Conversation(
        patient_id=patient.id,
        subject=subject.strip()[:200],
        created_by_id=actor.user_id,
        last_message_at=utcnow(),
    )
    session.add(conversation)
    session.flush()
    for user_id in {actor.user_id, recipient_user_id}:
        session.add(ConversationParticipant(conversation_id=conversation.id, user_id=user_id))
    return _post(
        session, actor, conversation, recipient_user_id, body, uploads or [], idempotency_key
    )


def participants(session: Session, conversation_id: int) -> list[int]:
    return list(
        session.scalars(
            select(ConversationParticipant.user_id).where(
                ConversationParticipant.conversation_id == conversation_id
            )
        )
    )


def reply(
    session: Session,
    actor: Actor,
    conversation_id: int,
    *,
    body: str,
    uploads: list[attachments.Upload] | None = None,
    idempotency_key: str | None = None,
) -> Message:
    """A reply in a thread the actor may see; it goes to the other participant(s)."""
    require(actor, Permission.MESSAGE_SEND)
    conversation = get_or_404(session, Conversation, conversation_id, actor)
    body = _check_body(body)
    people = participants(session, conversation.id)
    if actor.user_id not in people:
        # A provider of the care team joins the thread by replying to it.
        session.add(ConversationParticipant(conversation_id=conversation.id, user_id=actor.user_id))
    others = [u for u in people if u != actor.user_id]
    if actor.role is Role.PATIENT or not others:
        recipient = others[0] if others else actor.user_id
    else:
        patient = get_or_404(session, PatientProfile, conversation.patient_id, actor)
        recipient = patient.user_id or others[0]
    return _post(session, actor, conversation, recipient, body, uploads or [], idempotency_key)


def mark_thread_read(session: Session, actor: Actor, conversation_id: int) -> int:
    """Mark the actor's received messages in a thread read; returns how many changed."""
    conversation = get_or_404(session, Conversation, conversation_id, actor)
    now = utcnow()
    result = session.execute(
        update(Message)
        .where(
            Message.conversation_id == conversation.id,
            Message.recipient_id == actor.user_id,
            Message.status != MessageStatus.READ,
        )
        .values(status=MessageStatus.READ, read_at=now)
        .execution_options(synchronize_session=False)
    )
    notifications.mark_read(
        session, actor.user_id, type=EventType.MESSAGE_CREATED, entity_id=conversation.id
    )
    return int(getattr(result, "rowcount", 0) or 0)


def unread_count(session: Session, actor: Actor) -> int:
    stmt = (
        select(func.count())
        .select_from(Message)
        .where(Message.recipient_id == actor.user_id, Message.status != MessageStatus.READ)
    )
    return session.scalar(scope(stmt, Message, actor)) or 0

"""Secure messages: the caller's conversations, their messages, new threads, replies and
read receipts (docs/api.md).

Who may see a thread, write to whom and mark what read is the messaging service's; this module
parses, calls one verb and shapes the answer. People are named by user id (`from`, `to`,
`participants`), the patient a thread is about by PatientProfile id (`patientId`).
"""

from __future__ import annotations

from pydantic import Field
from sqlalchemy.orm import Session

from portal.access import Actor, get_or_404
from portal.api import bp
from portal.api.operations import operation
from portal.api.schemas import (
    FileIn,
    Instant,
    PageOut,
    PageQuery,
    Record,
    RecordId,
    Schema,
    with_example,
)
from portal.audit import audited
from portal.models import Attachment, AuditAction, Conversation, Entity, Message, MessageStatus
from portal.services import attachments, messaging
from portal.web.audit_reads import shown

TAG = "Messages"


class ConversationOut(Record):
    """A thread about one patient, as the caller sees it."""

    model_config = with_example(
        {
            "id": 87,
            "createdAt": "2026-11-03T12:30:04Z",
            "updatedAt": "2026-11-03T15:02:51Z",
            "patientId": 5,
            "subject": "Question about my results",
            "participants": [4, 2],
            "lastMessageAt": "2026-11-03T15:02:51Z",
            "unreadCount": 1,
        }
    )

    patient_id: int
    subject: str
    #: The user ids of everyone in the thread, the caller included.
    participants: list[int]
    last_message_at: Instant
    #: Messages sent to the caller in this thread that they have not read.
    unread_count: int


_ATTACHMENT = {
    "id": 19,
    "filename": "glucose-diary.pdf",
    "contentType": "application/pdf",
    "size": 48213,
}


class AttachmentOut(Schema):
    model_config = with_example(_ATTACHMENT)

    id: int
    filename: str
    content_type: str
    #: In bytes.
    size: int


class MessageOut(Record):
    """One message. `updatedAt` is its last change of status (delivered, read)."""

    model_config = with_example(
        {
            "id": 402,
            "createdAt": "2026-11-03T15:02:51Z",
            "updatedAt": "2026-11-03T15:40:17Z",
            "conversationId": 87,
            "from": 4,
            "to": 2,
            "body": "Thank you, that helps. My glucose diary for last week is attached.",
            "attachments": [_ATTACHMENT],
            "sentAt": "2026-11-03T15:02:51Z",
            "status": "read",
            "readAt": "2026-11-03T15:40:17Z",
        }
    )

    conversation_id: int
    #: The sender's user id.
    from_: int = Field(validation_alias="from", serialization_alias="from")
    #: The recipient's user id.
    to: int
    body: str
    attachments: list[AttachmentOut]
    sent_at: Instant
    status: MessageStatus
    read_at: Instant | None


class ConversationIn(Schema):
    """A new thread: a patient writes to one of their care team (`to`); a provider writes to
    a patient of theirs and names them (`patientId`): `to`, when given, is the patient's user
    id (`userId` of `GET /patients/{id}`), and may be left out."""

    model_config = with_example(
        {
            "subject": "Question about my results",
            "to": 2,
            "body": "Hello Dr Chen, my HbA1c was corrected to 5.9 %. Do I need to change anything?",
        }
    )

    subject: str = Field(max_length=200)
    to: RecordId | None = None
    body: str = Field(max_length=messaging.MAX_BODY)
    patient_id: RecordId | None = None
    #: Files sent with the first message, within the same limits as the pages'.
    attachments: list[FileIn] = Field(default_factory=list, max_length=20)


class ReplyIn(Schema):
    model_config = with_example(
        {"body": "Thank you, that helps. My glucose diary for last week is attached."}
    )

    body: str = Field(max_length=messaging.MAX_BODY)
    #: Files sent with the reply, within the same limits as the pages'.
    attachments: list[FileIn] = Field(default_factory=list, max_length=20)


def uploads(files: list[FileIn]) -> list[attachments.Upload]:
    return [attachments.Upload(f.filename, f.content) for f in files]


def _conversation(summary: messaging.ThreadSummary) -> ConversationOut:
    c = summary.conversation
    return ConversationOut(
        id=c.id,
        created_at=c.created_at,
        updated_at=c.updated_at,
        patient_id=c.patient_id,
        subject=c.subject,
        participants=summary.participant_ids,
        last_message_at=c.last_message_at,
        unread_count=summary.unread,
    )


def _message(message: Message, files: list[Attachment]) -> MessageOut:
    return MessageOut(
        id=message.id,
        created_at=message.created_at,
        updated_at=message.read_at or message.delivered_at or message.created_at,
        conversation_id=message.conversation_id,
        from_=message.sender_id,
        to=message.recipient_id,
        body=message.body,
        attachments=[
            AttachmentOut(
                id=a.id, filename=a.filename, content_type=a.content_type, size=a.size_bytes
            )
            for a in files
        ],
        sent_at=message.sent_at,
        status=message.status,
        read_at=message.read_at,
    )


def _one(session: Session, actor: Actor, message: Message) -> MessageOut:
    ((row, files),) = messaging.with_attachments(session, actor, [message])
    return _message(row, files)


@operation(
    bp,
    "GET",
    "/conversations",
    summary="The caller's conversations",
    tag=TAG,
    query=PageQuery,
    response=PageOut[ConversationOut],
    errors=(403,),
)
@audited(AuditAction.VIEW, Entity.CONVERSATION_LIST)
def list_conversations(
    session: Session, actor: Actor, *, query: PageQuery
) -> PageOut[ConversationOut]:
    """Threads the caller takes part in, newest activity first, with their unread count."""
    page = messaging.inbox(session, actor, cursor=query.cursor, limit=query.limit)
    return PageOut[ConversationOut](
        items=[_conversation(s) for s in page.rows], next_cursor=page.next_cursor
    )


@operation(
    bp,
    "POST",
    "/conversations",
    summary="Start a conversation",
    tag=TAG,
    body=ConversationIn,
    response=ConversationOut,
    status=201,
    idempotent=True,
    errors=(403, 409),
)
def start_conversation(session: Session, actor: Actor, *, body: ConversationIn) -> ConversationOut:
    """The thread with its first message. A patient writes about their own record."""
    first = messaging.start_conversation(
        session,
        actor,
        patient_id=body.patient_id,
        recipient_user_id=body.to,
        subject=body.subject,
        body=body.body,
        uploads=uploads(body.attachments),
    )
    return _conversation(messaging.thread_summary(session, actor, first.conversation_id))


@operation(
    bp,
    "GET",
    "/conversations/<int:conversation_id>/messages",
    summary="The messages of a conversation",
    tag=TAG,
    query=PageQuery,
    response=PageOut[MessageOut],
)
@audited(AuditAction.VIEW, Entity.CONVERSATION, id_arg="conversation_id")
def list_messages(
    session: Session, actor: Actor, conversation_id: int, *, query: PageQuery
) -> PageOut[MessageOut]:
    """Oldest first, each with its attachments. Reading them marks nothing read: see
    `POST /messages/{id}/read`."""
    shown(get_or_404(session, Conversation, conversation_id, actor))
    page = messaging.thread_page(
        session, actor, conversation_id, cursor=query.cursor, limit=query.limit
    )
    return PageOut[MessageOut](
        items=[_message(m, files) for m, files in page.rows], next_cursor=page.next_cursor
    )


@operation(
    bp,
    "POST",
    "/conversations/<int:conversation_id>/messages",
    summary="Reply in a conversation",
    tag=TAG,
    body=ReplyIn,
    response=MessageOut,
    status=201,
    idempotent=True,
    errors=(403, 409),
)
def reply(session: Session, actor: Actor, conversation_id: int, *, body: ReplyIn) -> MessageOut:
    """A reply to the other participant; send an `Idempotency-Key` so that a retry after a
    lost answer does not send it twice."""
    sent = messaging.reply(
        session, actor, conversation_id, body=body.body, uploads=uploads(body.attachments)
    )
    return _one(session, actor, sent)


@operation(
    bp,
    "POST",
    "/messages/<int:message_id>/read",
    summary="Mark a message read",
    tag=TAG,
    response=MessageOut,
    # The answer shows the message: recorded as a read of it, like opening the thread.
)
@audited(AuditAction.VIEW, Entity.MESSAGE, id_arg="message_id")
def mark_read(session: Session, actor: Actor, message_id: int) -> MessageOut:
    """Only the recipient may (404 for anyone else); marking it again changes nothing."""
    return _one(session, actor, shown(messaging.mark_message_read(session, actor, message_id)))


__all__ = ["AttachmentOut", "ConversationIn", "ConversationOut", "MessageOut", "ReplyIn"]

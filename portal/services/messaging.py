"""Secure messages between a patient and their care team."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from flask_babel import gettext
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from portal import audit
from portal.access import (
    Actor,
    Permission,
    RoleScope,
    get_or_404,
    reader,
    require,
    scoped,
    unscoped,
)
from portal.db import utcnow
from portal.models import (
    Attachment,
    AuditAction,
    CareAssignment,
    Conversation,
    ConversationParticipant,
    Entity,
    EventType,
    Message,
    MessageStatus,
    Notification,
    PatientProfile,
    ProviderProfile,
    Role,
    User,
)
from portal.services import attachments, notifications, paging
from portal.services import care_team as care_team_rule
from portal.services.errors import N_, ServiceError

MAX_BODY = 20_000


class MessageError(ServiceError):
    """A message that cannot be sent."""


def care_team(session: Session, actor: Actor, patient_id: int) -> list[ProviderProfile]:
    """The care team of a patient the actor may see (`care_team.members`: a current assignment
    and an active account), by name: whom a patient writes to and books with."""
    patient = get_or_404(session, PatientProfile, patient_id, actor)
    stmt = care_team_rule.members(patient.id).order_by(ProviderProfile.display_name)
    return list(session.scalars(stmt))


def unread_to(user_id: int | ColumnElement[int]) -> ColumnElement[bool]:
    """Messages sent to `user_id` that they have not read: the one meaning of an unread message
    (a thread's and the team inbox's counts, the staff list's attention, what opening a thread
    marks read, what a hand-over moves to the successor)."""
    return and_(Message.recipient_id == user_id, Message.status != MessageStatus.READ)


def _check_body(body: str) -> str:
    if not body.strip():
        raise MessageError("body", N_("Write a message."))
    if len(body) > MAX_BODY:
        raise MessageError(
            "body",
            gettext("Messages can be at most %(count)s characters.", count=format(MAX_BODY, ",")),
        )
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
    existing = sent_with_key(session, actor, idempotency_key)
    if existing is not None:
        return existing
    now = utcnow()
    rows = attachments.build_all(
        uploads, patient_id=conversation.patient_id, uploaded_by_id=actor.user_id
    )
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
        existing = sent_with_key(session, actor, idempotency_key)
        if existing is None:
            raise
        return existing
    for row in rows:
        row.message_id = message.id
        session.add(row)
    conversation.last_message_at = now
    audit.record(
        session,
        actor,
        AuditAction.SEND,
        Entity.MESSAGE,
        message.id,
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
    patient_id: int | None,
    recipient_user_id: int | None,
    subject: str,
    body: str,
    uploads: list[attachments.Upload] | None = None,
    idempotency_key: str | None = None,
) -> Message:
    """A new thread about a patient, between the patient and one of their care team.

    `patient_id` None means the actor's own record: a patient writes about themselves, a
    provider must name the patient (MessageError on `patient_id`). `recipient_user_id` None:
    for a provider, the patient themself (a patient must choose someone of their team)."""
    require(actor, Permission.MESSAGE_SEND)
    if patient_id is None:
        if actor.patient_id is None:
            raise MessageError("patient_id", N_("Choose the patient this conversation is about."))
        patient_id = actor.patient_id
    patient = get_or_404(session, PatientProfile, patient_id, actor)
    # A retried "new message" form must not open a second, empty thread.
    existing = sent_with_key(session, actor, idempotency_key)
    if existing is not None:
        return existing
    if not subject.strip():
        raise MessageError("subject", N_("Enter a subject."))
    body = _check_body(body)
    team_users = {p.user_id for p in care_team(session, actor, patient.id)}
    if recipient_user_id is None and actor.role is not Role.PATIENT:
        recipient_user_id = patient.user_id
    if recipient_user_id is None and actor.role is Role.PATIENT:
        raise MessageError("to", N_("Choose someone from your care team."))
    if actor.role is Role.PATIENT:
        if recipient_user_id not in team_users:
            raise MessageError("to", N_("Choose someone from your care team."))
    elif recipient_user_id is None or recipient_user_id != patient.user_id:
        raise MessageError("to", N_("This patient has no portal account yet."))
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
    message = _post(
        session, actor, conversation, recipient_user_id, body, uploads or [], idempotency_key
    )
    if message.conversation_id != conversation.id:
        # Two posts of one key at the same moment both got past the check above (PostgreSQL,
        # READ COMMITTED) and the other won the message's unique key: take this thread back.
        session.execute(
            delete(ConversationParticipant).where(
                ConversationParticipant.conversation_id == conversation.id
            )
        )
        session.delete(conversation)
        session.flush()
    return message


#: What a patient (or a clinician) reads on a thread closed by a care-team change.
CLOSED_NOTICE = N_(
    "This conversation is closed for replies: nobody on your care team can read it since "
    "your care team changed. To write to your care team, start a new message."
)


def _successor(session: Session, patient_id: int) -> int | None:
    """The user id of the care team member who takes over a thread: the longest-serving member
    of the patient's care team (`care_team.members`; None: nobody is left)."""
    stmt = (
        care_team_rule.members(patient_id, ProviderProfile.user_id)
        .order_by(CareAssignment.started_at, CareAssignment.id)
        .limit(1)
    )
    return session.scalar(stmt)


def hand_over(session: Session, actor: Actor, *, patient_id: int, leaving_user_id: int) -> int:
    """After `leaving_user_id` left the patient's care team, leave no thread that nobody reads.

    Each open thread about the patient they took part in goes to the longest-serving member
    still on the care team (who takes their place on it, and is sent its unread messages and a
    notification), or, with nobody left, is closed for replies (`CLOSED_NOTICE`). The leaver's
    unread notifications about the patient are marked read: they can no longer open them.
    Runs in the care-team change's unit of work; returns how many threads were handled.
    """
    successor = _successor(session, patient_id)
    theirs = select(ConversationParticipant.conversation_id).where(
        ConversationParticipant.user_id == leaving_user_id
    )
    stmt = select(Conversation).where(
        Conversation.patient_id == patient_id,
        Conversation.closed_at.is_(None),
        Conversation.id.in_(theirs),
    )
    # The administrator making the change may not read threads; this moves them, shows nothing.
    threads = list(session.scalars(unscoped(stmt.order_by(Conversation.id), "care-team change")))
    for conversation in threads:
        _hand_over_thread(session, actor, conversation, leaving_user_id, successor)
    notifications.mark_read(session, leaving_user_id, patient_id=patient_id)
    session.flush()
    return len(threads)


def take_back(session: Session, actor: Actor | None, *, patient_id: int, user_id: int) -> int:
    """After `user_id` (a provider) joined the patient's care team again: the threads about
    the patient closed when they left, with nobody left to read them, open again for replies;
    and the messages still unread to them in their threads about the patient are announced
    again (one notification each: `hand_over` marked the old ones read), so that the
    Messages badge counts what their inbox shows. Runs in the care-team change's unit of
    work; returns how many threads were reopened."""
    theirs = select(ConversationParticipant.conversation_id).where(
        ConversationParticipant.user_id == user_id
    )
    stmt = select(Conversation).where(
        Conversation.patient_id == patient_id, Conversation.id.in_(theirs)
    )
    # The administrator making the change may not read threads; this reopens them, shows none.
    threads = list(session.scalars(unscoped(stmt.order_by(Conversation.id), "care-team change")))
    reopened = 0
    for conversation in threads:
        if conversation.closed_at is not None:
            conversation.closed_at = None
            reopened += 1
            audit.record(
                session,
                actor,
                AuditAction.UPDATE,
                Entity.CONVERSATION,
                conversation.id,
                patient_id=patient_id,
                detail={"reopened": True, "returned": user_id},
                by="operator",
            )
        unread = session.scalar(
            unscoped(
                select(func.count(Message.id)).where(
                    Message.conversation_id == conversation.id, unread_to(user_id)
                ),
                "care-team change: a count, no content",
            )
        )
        if not unread:
            continue
        # One mail and socket event per thread; one unread notification per message.
        text = f"Back on the care team: {conversation.subject}"
        notifications.stage(
            session,
            [user_id],
            type=EventType.MESSAGE_CREATED,
            entity_id=conversation.id,
            patient_id=patient_id,
            text=text,
        )
        for _ in range(int(unread) - 1):
            session.add(
                Notification(
                    user_id=user_id,
                    patient_id=patient_id,
                    type=EventType.MESSAGE_CREATED,
                    entity_id=conversation.id,
                    text=text,
                )
            )
    session.flush()
    return reopened


def _hand_over_thread(
    session: Session,
    actor: Actor,
    conversation: Conversation,
    leaving_user_id: int,
    successor: int | None,
) -> None:
    if successor is None:
        # They stay named on it (the patient reads who it was with); nobody replies any more.
        conversation.closed_at = utcnow()
        detail: dict[str, object] = {"closed": True}
    else:
        session.execute(
            delete(ConversationParticipant).where(
                ConversationParticipant.conversation_id == conversation.id,
                ConversationParticipant.user_id == leaving_user_id,
            )
        )
        if successor not in participants(session, conversation.id):
            session.add(ConversationParticipant(conversation_id=conversation.id, user_id=successor))
        moved = session.execute(
            update(Message)
            .where(Message.conversation_id == conversation.id, unread_to(leaving_user_id))
            .values(recipient_id=successor)
            .execution_options(synchronize_session=False)
        )
        if getattr(moved, "rowcount", 0):
            notifications.stage(
                session,
                [successor],
                type=EventType.MESSAGE_CREATED,
                entity_id=conversation.id,
                patient_id=conversation.patient_id,
                text=f"Handed to you: {conversation.subject}",
            )
        detail = {"handed_to": successor}
    audit.record(
        session,
        actor,
        AuditAction.UPDATE,
        Entity.CONVERSATION,
        conversation.id,
        patient_id=conversation.patient_id,
        detail={"left": leaving_user_id, **detail},
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
    if conversation.closed_at is not None:
        raise MessageError("body", CLOSED_NOTICE)
    body = _check_body(body)
    people = participants(session, conversation.id)
    if actor.user_id not in people:
        # A provider of the care team joins the thread by replying to it.
        session.add(ConversationParticipant(conversation_id=conversation.id, user_id=actor.user_id))
    # A proxy writes on the patient's side of the thread: neither is the other's recipient.
    side = {actor.user_id, actor.acting_for.patient_user_id if actor.acting_for else None}
    others = [u for u in people if u not in side]
    if actor.role is Role.PATIENT or not others:
        recipient = others[0] if others else actor.user_id
    else:
        patient = get_or_404(session, PatientProfile, conversation.patient_id, actor)
        recipient = patient.user_id or others[0]
    if not session.scalar(select(User.is_active).where(User.id == recipient)):
        raise MessageError(
            "body",
            N_("This person no longer uses the portal. Start a new message to your care team."),
        )
    return _post(session, actor, conversation, recipient, body, uploads or [], idempotency_key)


def _unread_in_thread_stmt(rs: RoleScope) -> Select[int]:
    """One of the reader's received, unread messages in conversation `:conversation_id`."""
    stmt = select(Message.id).where(
        Message.conversation_id == bindparam("conversation_id", type_=Integer),
        unread_to(rs.user_id),
    )
    return rs.scope(stmt.limit(1), Message)


def thread_unread(session: Session, actor: Actor, conversation_id: int) -> bool:
    """Whether opening the thread has anything to mark read (a message or its notification):
    a read, so that opening a read thread takes no write lock."""
    stmt = scoped(_unread_in_thread_stmt, actor)
    if session.scalar(stmt, reader(actor, conversation_id=conversation_id)) is not None:
        return True
    return notifications.has_unread(
        session, actor, type=EventType.MESSAGE_CREATED, entity_id=conversation_id
    )


def _undelivered(user_id: int, conversation_ids: list[int] | None) -> ColumnElement[bool]:
    found = and_(Message.recipient_id == user_id, Message.status == MessageStatus.SENT)
    if conversation_ids is not None:
        found = and_(found, Message.conversation_id.in_(conversation_ids))
    return found


#: Built once (every page of the areas runs it): one id of a message not yet delivered to
#: `:user_id`. Ids of the reader's own messages, no content: whether to mark them delivered.
_UNDELIVERED = unscoped(
    select(Message.id)
    .where(
        Message.recipient_id == bindparam("user_id", type_=Integer),
        Message.status == MessageStatus.SENT,
    )
    .limit(1),
    "delivery receipt",
)


def has_undelivered(session: Session, user_id: int) -> bool:
    """Whether a message sent to `user_id` has not reached them yet (an index read on
    `ix_message_recipient_status`, so that a page with nothing to mark takes no write lock
    to find that out)."""
    return session.scalar(_UNDELIVERED, {"user_id": user_id}) is not None


def mark_delivered(
    session: Session, user_id: int, conversation_ids: list[int] | None = None
) -> int:
    """Messages sent to `user_id` reached them (their socket carried the event, or they
    opened a page): `sent` becomes `delivered` with its time, once; `read` is left alone.
    `conversation_ids`: only those threads. Returns how many changed."""
    if conversation_ids is not None and not conversation_ids:
        return 0
    result = session.execute(
        update(Message)
        .where(_undelivered(user_id, conversation_ids))
        .values(status=MessageStatus.DELIVERED, delivered_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def mark_thread_read(session: Session, actor: Actor, conversation_id: int) -> int:
    """Mark the actor's received messages in a thread read; returns how many changed."""
    conversation = get_or_404(session, Conversation, conversation_id, actor)
    now = utcnow()
    result = session.execute(
        update(Message)
        .where(Message.conversation_id == conversation.id, unread_to(actor.user_id))
        .values(status=MessageStatus.READ, read_at=now)
        .execution_options(synchronize_session=False)
    )
    notifications.mark_read(
        session, actor.user_id, type=EventType.MESSAGE_CREATED, entity_id=conversation.id
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- Reads for the patient's inbox and threads (helper "patient") ---


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    conversation: Conversation
    #: The other participants' names.
    participants: list[str]
    last_message: Message | None
    unread: int
    #: Every participant's user id, the actor's included, in the order they joined.
    participant_ids: list[int] = field(default_factory=list)


def _my_threads(rs: RoleScope) -> paging.KeysetStatements:
    """Threads the reader takes part in, newest activity first."""
    mine = select(ConversationParticipant.conversation_id).where(
        ConversationParticipant.user_id == rs.user_id
    )
    stmt = rs.scope(select(Conversation).where(Conversation.id.in_(mine)), Conversation)
    keyset = paging.Keyset(
        "threads", ((Conversation.last_message_at, True), (Conversation.id, True))
    )
    return keyset.statements(stmt)


_IDS: BindParameter[list[int]] = bindparam("conversation_ids", expanding=True)


def _unread_by_thread(rs: RoleScope) -> Select[int, int]:
    stmt = (
        select(Message.conversation_id, func.count())
        .where(Message.conversation_id.in_(_IDS), unread_to(rs.user_id))
        .group_by(Message.conversation_id)
    )
    return rs.scope(stmt, Message)


def _newest_by_thread(rs: RoleScope) -> Select[Message]:
    newest = (
        select(func.max(Message.id))
        .where(Message.conversation_id.in_(_IDS))
        .group_by(Message.conversation_id)
    )
    return rs.scope(select(Message).where(Message.id.in_(newest)), Message)


#: Names only (display names of the other participants): no patient-owned table is read.
_PARTICIPANTS = (
    select(ConversationParticipant.conversation_id, User)
    .join(User, User.id == ConversationParticipant.user_id)
    .where(ConversationParticipant.conversation_id.in_(_IDS))
    .order_by(ConversationParticipant.id)
)


def inbox(
    session: Session, actor: Actor, *, cursor: str | None = None, limit: int = 50
) -> paging.Page[ThreadSummary]:
    """A page of the threads the actor takes part in, newest activity first, each with the
    other participants' names and the actor's unread count.

    Four queries however many threads or messages there are. A role that takes part in no
    conversation (an admin) gets 403.
    """
    require(actor, Permission.MESSAGE_SEND)
    page = scoped(_my_threads, actor).page(
        session,
        reader(actor),
        cursor=cursor,
        limit=paging.clamp(limit),
        key_of=lambda row: (row[0].last_message_at, row[0].id),
    )
    return replace(page, rows=_summaries(session, actor, [row[0] for row in page.rows]))


def thread_summary(session: Session, actor: Actor, conversation_id: int) -> ThreadSummary:
    """One thread the actor may see, summarised as in `inbox` (404 otherwise)."""
    conversation = get_or_404(session, Conversation, conversation_id, actor)
    return _summaries(session, actor, [conversation])[0]


def _summaries(
    session: Session, actor: Actor, conversations: list[Conversation]
) -> list[ThreadSummary]:
    """`conversations` with their participants, newest message and the actor's unread count
    (three queries)."""
    ids = [c.id for c in conversations]
    if not ids:
        return []
    params = reader(actor, conversation_ids=ids)
    unread = {cid: n for cid, n in session.execute(scoped(_unread_by_thread, actor), params)}
    last = {m.conversation_id: m for m in session.scalars(scoped(_newest_by_thread, actor), params)}
    names: dict[int, list[str]] = {}
    members: dict[int, list[int]] = {}
    for conversation_id, user in session.execute(_PARTICIPANTS, params).unique():
        members.setdefault(conversation_id, []).append(user.id)
        if user.id != actor.user_id:  # the others in the thread, by name
            names.setdefault(conversation_id, []).append(user.display_name)
    return [
        ThreadSummary(
            c, names.get(c.id, []), last.get(c.id), int(unread.get(c.id, 0)), members.get(c.id, [])
        )
        for c in conversations
    ]


def _thread_stmt(rs: RoleScope) -> Select[Message]:
    """The messages of conversation `:conversation_id`, oldest first."""
    stmt = (
        select(Message)
        .where(Message.conversation_id == bindparam("conversation_id", type_=Integer))
        .order_by(Message.sent_at, Message.id)
    )
    return rs.scope(stmt, Message)


def _message_files_stmt(rs: RoleScope) -> Select[Attachment]:
    """The attachments of the messages `:message_ids` (a list), in upload order."""
    message_ids = bindparam("message_ids", type_=Integer, expanding=True)
    stmt = select(Attachment).where(Attachment.message_id.in_(message_ids))
    return rs.scope(stmt.order_by(Attachment.id), Attachment)


def thread_messages(
    session: Session, actor: Actor, conversation: Conversation
) -> list[tuple[Message, list[Attachment]]]:
    """The messages of a thread the actor may see, oldest first, each with its attachments."""
    messages = list(
        session.scalars(scoped(_thread_stmt, actor), reader(actor, conversation_id=conversation.id))
    )
    return with_attachments(session, actor, messages)


def with_attachments(
    session: Session, actor: Actor, messages: list[Message]
) -> list[tuple[Message, list[Attachment]]]:
    """Each of `messages` with the attachments the actor may see (one query)."""
    files: dict[int, list[Attachment]] = {}
    if messages:
        params = reader(actor, message_ids=[m.id for m in messages])
        for row in session.scalars(scoped(_message_files_stmt, actor), params):
            assert row.message_id is not None
            files.setdefault(row.message_id, []).append(row)
    return [(m, files.get(m.id, [])) for m in messages]


def _thread_pages(rs: RoleScope) -> paging.KeysetStatements:
    """The messages of conversation `:conversation_id`, oldest first."""
    stmt = select(Message).where(
        Message.conversation_id == bindparam("conversation_id", type_=Integer)
    )
    keyset = paging.Keyset("messages", ((Message.sent_at, False), (Message.id, False)))
    return keyset.statements(rs.scope(stmt, Message))


def thread_page(
    session: Session,
    actor: Actor,
    conversation_id: int,
    *,
    cursor: str | None = None,
    limit: int = paging.DEFAULT_LIMIT,
) -> paging.Page[tuple[Message, list[Attachment]]]:
    """A page of a thread's messages, oldest first, each with its attachments; 404 for a
    thread the actor may not see. Reading the page marks nothing read (`mark_message_read`)."""
    conversation = get_or_404(session, Conversation, conversation_id, actor)
    page = scoped(_thread_pages, actor).page(
        session,
        reader(actor, conversation_id=conversation.id),
        cursor=cursor,
        limit=paging.clamp(limit),
        key_of=lambda row: (row[0].sent_at, row[0].id),
    )
    return replace(page, rows=with_attachments(session, actor, [row[0] for row in page.rows]))


def mark_message_read(session: Session, actor: Actor, message_id: int) -> Message:
    """The recipient marks one message read (again: no change). A message the actor may not
    see, or did not receive, is a 404: only its recipient may say it was read. Once none of
    the thread is left unread, its "new message" notifications are read too."""
    message = get_or_404(session, Message, message_id, actor)
    if message.recipient_id != actor.user_id:
        raise NotFound()
    if message.status is not MessageStatus.READ:
        message.status = MessageStatus.READ
        message.read_at = utcnow()
        session.flush()
    params = reader(actor, conversation_ids=[message.conversation_id])
    if session.execute(scoped(_unread_by_thread, actor), params).first() is None:
        notifications.mark_read(
            session,
            actor.user_id,
            type=EventType.MESSAGE_CREATED,
            entity_id=message.conversation_id,
        )
    return message


def users_by_id(session: Session, user_ids: set[int]) -> dict[int, User]:
    """Accounts by id (display names for senders, recipients, authors)."""
    if not user_ids:
        return {}
    rows = session.scalars(select(User).where(User.id.in_(user_ids)))
    return {u.id: u for u in rows.unique()}


def _sent_with_key_stmt(rs: RoleScope) -> Select[Message]:
    """The message the reader sent with idempotency key `:idempotency_key`."""
    stmt = select(Message).where(
        Message.sender_id == rs.user_id,
        Message.idempotency_key == bindparam("idempotency_key", type_=String),
    )
    return rs.scope(stmt, Message)


def sent_with_key(session: Session, actor: Actor, idempotency_key: str | None) -> Message | None:
    """The actor's message already sent with this idempotency key, if any (a retried form)."""
    if not idempotency_key:
        return None
    params = reader(actor, idempotency_key=idempotency_key)
    return session.scalar(scoped(_sent_with_key_stmt, actor), params)


# --- The care team's inbox (helper "staff") ---


@dataclass(frozen=True, slots=True)
class TeamThread:
    conversation: Conversation
    patient: PatientProfile
    unread: int


def _team_threads(rs: RoleScope) -> paging.KeysetStatements:
    """Every thread about the reader's patients: unread by the reader first, then newest."""
    unread = (
        select(Message.conversation_id, func.count().label("n"))
        .where(unread_to(rs.user_id))
        .group_by(Message.conversation_id)
        .subquery()
    )
    waiting = func.coalesce(unread.c.n, 0)
    has_unread = case((waiting > 0, 1), else_=0)
    stmt = (
        select(Conversation, PatientProfile, waiting)
        .join(PatientProfile, PatientProfile.id == Conversation.patient_id)
        .outerjoin(unread, unread.c.conversation_id == Conversation.id)
    )
    keyset = paging.Keyset(
        "team_threads",
        ((has_unread, True), (Conversation.last_message_at, True), (Conversation.id, True)),
    )
    return keyset.statements(rs.scope(stmt, Conversation))


def team_inbox(
    session: Session, actor: Actor, *, cursor: str | None = None, limit: int = 50
) -> paging.Page[TeamThread]:
    """A page of every thread about the actor's patients (not only those they take part in),
    threads with messages unread by the actor first, then newest activity. One query."""
    page = scoped(_team_threads, actor).page(
        session,
        reader(actor),
        cursor=cursor,
        limit=paging.clamp(limit),
        key_of=lambda row: (1 if row[2] else 0, row[0].last_message_at, row[0].id),
    )
    return replace(page, rows=[TeamThread(c, p, int(n)) for c, p, n in page.rows])

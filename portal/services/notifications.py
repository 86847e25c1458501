"""Stored notifications: staged in the same transaction as the change they announce.

They are also the real-time event stream (docs/events.md): a notification's id is its event id,
so a socket that saw event N asks for what the reader may see after N (`events_after`), and a
user who was away finds the same rows as "new" at the next sign-in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from flask import current_app, has_app_context
from sqlalchemy import (
    CompoundSelect,
    Connection,
    Integer,
    Select,
    String,
    bindparam,
    cast,
    func,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from portal.access import Actor, RoleScope, reader, scoped, union_of, unscoped
from portal.audit import chain
from portal.db import utcnow
from portal.models import EventType, Notification, PatientProfile
from portal.services import mail, paging

#: The PostgreSQL channel that wakes every process's event bus when notifications commit.
CHANNEL = "portal_events"
_WAKE = text(f"SELECT pg_notify('{CHANNEL}', '')")


def stage(
    session: Session,
    user_ids: Iterable[int | None],
    *,
    type: EventType,
    entity_id: int,
    patient_id: int | None,
    text: str,
) -> None:
    """One notification per recipient (users without an account yet are skipped).

    Event ids must grow in commit order, or a socket that has seen event 101 would never be
    sent an event 100 that committed after it. SQLite's writers are serial already; on
    PostgreSQL the audit chain's append lock (held to commit; every change appends to the
    chain anyway) is taken before the ids are drawn, and `pg_notify` wakes the other
    processes' buses only when the transaction commits.
    """
    recipients = {u for u in user_ids if u is not None}
    if not recipients:
        return
    if session.get_bind().dialect.name == "postgresql":
        chain.hold_append_lock(session)
        session.execute(_WAKE)
    mail.stage_notices(session, recipients, kind=type, portal_url=_portal_url())
    for user_id in recipients:
        session.add(
            Notification(
                user_id=user_id, patient_id=patient_id, type=type, entity_id=entity_id, text=text
            )
        )


def _portal_url() -> str:
    return str(current_app.config["PORTAL_URL"]) if has_app_context() else "http://localhost"


def patient_user_id(session: Session, patient_id: int) -> int | None:
    """The patient's sign-in, to address a notification (None before they activate)."""
    stmt = select(PatientProfile.user_id).where(PatientProfile.id == patient_id)
    # Fan-out of a change the caller was already allowed to make: only the id leaves here.
    return session.scalar(unscoped(stmt, "notification fan-out"))


#: The newest event id of anyone (0 before the first): where a stream starts.
_POSITION = func.coalesce(func.max(Notification.id), 0)


def _nav_stmt(rs: RoleScope) -> CompoundSelect:
    """The reader's own unread notifications counted by type, and a row with no type holding
    the newest event id of anyone (ids carry no content): the nav's badges and the page's
    socket position in one round trip."""
    counts = rs.own(
        select(cast(Notification.type, String), func.count())
        .where(Notification.read_at.is_(None))
        .group_by(Notification.type)
    )
    position = unscoped(select(null().cast(String), _POSITION), "the stream's position, no rows")
    return union_of(counts, position)


@dataclass(frozen=True)
class Nav:
    """What every signed-in page's layout shows of notifications (see `nav_state`)."""

    unread: dict[EventType, int]
    position: int


def nav_state(session: Session, actor: Actor) -> Nav:
    """The actor's unread notifications by type (the badge and the dashboard's "new" read
    this) and the stream's position (see `latest_event_id`). Every signed-in page runs it:
    its statement is built once."""
    unread: dict[EventType, int] = {}
    position = 0
    for kind, n in session.execute(scoped(_nav_stmt, actor), reader(actor)):
        if kind is None:
            position = int(n)
        else:
            unread[EventType(kind)] = int(n)
    return Nav(unread, position)


def _unread_of_type_stmt(rs: RoleScope, about_one: bool) -> Select[int]:
    stmt = select(Notification.id).where(
        Notification.read_at.is_(None), Notification.type == bindparam("type")
    )
    if about_one:
        stmt = stmt.where(Notification.entity_id == bindparam("entity_id"))
    return rs.own(stmt.limit(1))


def has_unread(
    session: Session, actor: Actor, *, type: EventType, entity_id: int | None = None
) -> bool:
    """Whether the reader has an unread notification of `type` (about `entity_id`): a read,
    so that a page with nothing to mark read takes no write lock to find that out."""
    stmt = scoped(_unread_of_type_stmt, actor, entity_id is not None)
    found = session.scalar(stmt, reader(actor, type=type, entity_id=entity_id))
    return found is not None


def mark_read(
    session: Session,
    user_id: int,
    *,
    type: EventType | None = None,
    entity_id: int | None = None,
    patient_id: int | None = None,
) -> None:
    """Mark the user's notifications read: all of a type, those about one record, or those
    about one patient."""
    stmt = update(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    if type is not None:
        stmt = stmt.where(Notification.type == type)
    if entity_id is not None:
        stmt = stmt.where(Notification.entity_id == entity_id)
    if patient_id is not None:
        stmt = stmt.where(Notification.patient_id == patient_id)
    session.execute(stmt.values(read_at=utcnow()))


# --- The reader's own list (the staff's "Notifications") ---

_LIST = paging.Keyset("notifications", ((Notification.id, True),))


def _own_list_stmt(rs: RoleScope) -> paging.KeysetStatements:
    """The reader's own notifications, newest first, about patients they may see now."""
    visible = rs.patients(select(PatientProfile.id))
    stmt = select(Notification).where(
        or_(Notification.patient_id.is_(None), Notification.patient_id.in_(visible))
    )
    return _LIST.statements(rs.own(stmt))


def own_page(
    session: Session, actor: Actor, *, cursor: str | None = None, limit: int = paging.DEFAULT_LIMIT
) -> paging.Page[Notification]:
    """A page of the actor's notifications, newest first (read and unread)."""
    page = scoped(_own_list_stmt, actor).page(
        session,
        reader(actor),
        cursor=cursor,
        limit=paging.clamp(limit),
        key_of=lambda r: (r[0].id,),
    )
    return replace(page, rows=[row[0] for row in page.rows])


def open_own(session: Session, actor: Actor, event_id: int) -> Notification:
    """One of the actor's notifications, marked read as it is opened (404 for any other)."""
    found = own_event(session, actor, event_id)
    if found is None:
        raise NotFound()
    if found.read_at is None:
        found.read_at = utcnow()
        session.flush()
    return found


# --- The event stream ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """What a socket sends: ids and a time, never the notification's text
    (docs/events.md: `type`, `id`, `patientId`, `at`)."""

    event_id: int
    type: EventType
    entity_id: int
    patient_id: int | None
    at: datetime

    def payload(self) -> dict[str, object]:
        at = self.at if self.at.tzinfo else self.at.replace(tzinfo=UTC)
        return {
            "type": str(self.type),
            "id": self.entity_id,
            "patientId": self.patient_id,
            "at": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "eventId": self.event_id,
        }


def _events_after_stmt(rs: RoleScope) -> Select[int, EventType, int, int | None, datetime]:
    """The reader's own events after an id, oldest first, about patients they may see *now*:
    a provider taken off a care team stops receiving that patient's events at once."""
    visible = rs.patients(select(PatientProfile.id))
    stmt = (
        select(
            Notification.id,
            Notification.type,
            Notification.entity_id,
            Notification.patient_id,
            Notification.created_at,
        )
        .where(
            Notification.id > bindparam("after", type_=Integer),
            or_(Notification.patient_id.is_(None), Notification.patient_id.in_(visible)),
        )
        .order_by(Notification.id)
        .limit(bindparam("limit", type_=Integer))
    )
    return rs.own(stmt)


def events_after(session: Session, actor: Actor, after: int, *, limit: int) -> list[Event]:
    """Up to `limit` of the actor's events with ids above `after` (index `user_id, id`)."""
    stmt = scoped(_events_after_stmt, actor)
    rows = session.execute(stmt, reader(actor, after=after, limit=limit))
    return [Event(id_, type_, entity, patient, at) for id_, type_, entity, patient, at in rows]


_LATEST = unscoped(select(_POSITION), "the stream's position, no rows")


def latest_event_id(session: Session | Connection) -> int:
    """The newest event id of anyone: a page rendered now has seen everything up to it, so
    its socket asks for what comes after (ids carry no content: nothing is read here)."""
    return int(session.scalar(_LATEST) or 0)


def _one_event_stmt(rs: RoleScope) -> Select[Notification]:
    # L3 (docs/security.md): a notification about a patient is read only while the reader
    # may still see that patient (a provider taken off the care team no longer does).
    still_visible = or_(
        Notification.patient_id.is_(None),
        Notification.patient_id.in_(rs.patients(select(PatientProfile.id))),
    )
    return rs.own(
        select(Notification).where(Notification.id == bindparam("event_id"), still_visible)
    )


def own_event(session: Session, actor: Actor, event_id: int) -> Notification | None:
    """One of the actor's own notifications (its text is for them alone), or None."""
    stmt = scoped(_one_event_stmt, actor)
    found: Notification | None = session.scalar(stmt, reader(actor, event_id=event_id))
    return found

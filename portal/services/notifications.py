"""Stored notifications: staged in the same transaction as the change they announce."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from portal.access import Actor, RoleScope, reader, scoped, unscoped
from portal.db import utcnow
from portal.models import EventType, Notification, PatientProfile


def stage(
    session: Session,
    user_ids: Iterable[int | None],
    *,
    type: EventType,
    entity_id: int,
    patient_id: int | None,
    text: str,
) -> None:
    """One notification per recipient (users without an account yet are skipped)."""
    for user_id in {u for u in user_ids if u is not None}:
        session.add(
            Notification(
                user_id=user_id, patient_id=patient_id, type=type, entity_id=entity_id, text=text
            )
        )


def patient_user_id(session: Session, patient_id: int) -> int | None:
    """The patient's sign-in, to address a notification (None before they activate)."""
    stmt = select(PatientProfile.user_id).where(PatientProfile.id == patient_id)
    # Fan-out of a change the caller was already allowed to make: only the id leaves here.
    return session.scalar(unscoped(stmt, "notification fan-out"))


def _unread_counts_stmt(rs: RoleScope) -> Select[EventType, int]:
    """The reader's own unread notifications, counted by type."""
    stmt = (
        select(Notification.type, func.count())
        .where(Notification.read_at.is_(None))
        .group_by(Notification.type)
    )
    return rs.own(stmt)


def unread_counts(session: Session, actor: Actor) -> dict[EventType, int]:
    """The actor's unread notifications by type: the badge and the dashboard's "new" read
    this. Every signed-in page runs it (for the nav badge): its statement is built once."""
    stmt = scoped(_unread_counts_stmt, actor)
    return {t: n for t, n in session.execute(stmt, reader(actor))}


def mark_read(
    session: Session, user_id: int, *, type: EventType | None = None, entity_id: int | None = None
) -> None:
    """Mark the user's notifications read: all of a type, or those about one record."""
    stmt = update(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    if type is not None:
        stmt = stmt.where(Notification.type == type)
    if entity_id is not None:
        stmt = stmt.where(Notification.entity_id == entity_id)
    session.execute(stmt.values(read_at=utcnow()))

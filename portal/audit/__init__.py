"""Audit: one entry for every sensitive view and change, in the same transaction as the change.

Writes call `record()` inside the service that makes the change, so the entry commits or rolls
back with it. Reads are declared on the route with `@audited(...)`; the read hook
(`portal.web.audit_reads`) decides, once the view has answered, whether and what it showed,
and commits the entry with `commit_read()` before the response leaves. The log is append-only:
the ORM refuses to update or delete an entry here, and the database refuses it with triggers,
which let an UPDATE do one thing only: fill an entry's empty seal, once (`chain.seal`).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapper, ORMExecuteState, Session

from portal.actor import ORIGIN_KEY, Actor, Origin
from portal.audit import chain
from portal.audit.declare import AuditSpec, Subject, audit_exempt, audit_spec_for, audited
from portal.db import utcnow
from portal.models import AuditAction, AuditEvent, AuditOutcome, Entity
from portal.models.owned import ImmutableRowError

log = logging.getLogger("portal.audit")

__all__ = [
    "AuditLogImmutableError",
    "AuditSpec",
    "Subject",
    "audit_exempt",
    "audit_spec_for",
    "audited",
    "commit_entry",
    "commit_read",
    "record",
]


class AuditLogImmutableError(ImmutableRowError):
    """Something tried to change or remove an audit entry."""


@event.listens_for(AuditEvent, "before_update")
def _refuse_update(_mapper: Mapper[Any], _conn: Any, target: AuditEvent) -> None:
    raise AuditLogImmutableError(f"audit entry {target.id} is append-only: update refused")


@event.listens_for(AuditEvent, "before_delete")
def _refuse_delete(_mapper: Mapper[Any], _conn: Any, target: AuditEvent) -> None:
    raise AuditLogImmutableError(f"audit entry {target.id} is append-only: delete refused")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes(state: ORMExecuteState) -> None:
    """ORM bulk `update(AuditEvent)` / `delete(AuditEvent)` bypass the mapper events above."""
    if not (state.is_update or state.is_delete):
        return
    if any(m.class_ is AuditEvent for m in state.all_mappers):
        raise AuditLogImmutableError("audit entries are append-only: bulk change refused")


def _origin(session: Session) -> dict[str, Any]:
    """Where the request that writes in `session` came from (`web.identity` puts it on the
    request's session); nothing for a job or the command line."""
    origin: Origin | None = session.info.get(ORIGIN_KEY)
    if origin is None:
        return {"request_id": None, "client_addr": None, "user_agent": None}
    return {
        "request_id": origin.request_id,
        "client_addr": origin.client_addr,
        "user_agent": origin.user_agent,
    }


def _with_channel(actor: Actor | None, detail: dict[str, Any] | None) -> dict[str, Any]:
    """`detail` plus, for a signed-in actor, the door and how they signed in (a browser
    session, an API token)."""
    detail = dict(detail or {})
    if actor is not None and actor.session_id is not None:
        detail.setdefault("via", str(actor.via))
        detail.setdefault("channel", str(actor.door))
    if actor is not None and actor.acting_for is not None:
        # Made through a proxy grant: the proxy is the actor, the patient the subject.
        detail.setdefault("proxy_grant", actor.acting_for.grant_id)
    return detail


def record(
    session: Session,
    actor: Actor | None,
    action: AuditAction,
    entity: Entity,
    entity_id: int | str | None = None,
    *,
    patient_id: int | None = None,
    outcome: AuditOutcome = AuditOutcome.SUCCESS,
    detail: dict[str, Any] | None = None,
    by: str | None = None,
) -> AuditEvent:
    """Write one entry in `session`'s transaction; it commits with the change.

    `actor` is who acted (None, with `by` saying what: "system" for a job, "operator" for the
    command line). Unsealed: the worker's sealer links and signs it into the chain shortly
    after it commits (`chain.seal`), so no writer waits for the chain. If the entry cannot be
    written this raises, and the caller's transaction (the change included) must roll back:
    a change is never kept without its entry.
    """
    event_ = AuditEvent(
        occurred_at=utcnow(),
        actor_id=None if actor is None else actor.user_id,
        actor_role=by if actor is None else str(actor.role),
        action=action,
        entity_type=str(entity),
        entity_id=None if entity_id is None else str(entity_id),
        patient_id=patient_id,
        outcome=outcome,
        detail=json.dumps(_with_channel(actor, detail), sort_keys=True, separators=(",", ":")),
        **_origin(session),
    )
    session.add(event_)
    session.flush()
    return event_


def commit_read(
    session: Session,
    actor: Actor,
    action: AuditAction,
    subject: Subject,
    *,
    outcome: AuditOutcome = AuditOutcome.SUCCESS,
    detail: dict[str, Any] | None = None,
) -> None:
    """Commit the entry of a response that showed (or refused) `subject` (`commit_entry`)."""
    commit_entry(
        session,
        {
            "occurred_at": utcnow(),
            "actor_id": actor.user_id,
            "actor_role": str(actor.role),
            "action": action,
            "entity_type": subject.entity_type,
            "entity_id": None if subject.entity_id is None else str(subject.entity_id),
            "patient_id": subject.patient_id,
            "outcome": outcome,
            "detail": json.dumps(
                {"via": str(actor.via), "channel": str(actor.door), **_with_channel(actor, detail)},
                sort_keys=True,
                separators=(",", ":"),
            ),
            **_origin(session),
        },
    )


def commit_entry(session: Session, row: dict[str, Any]) -> None:
    """Commit the entry `row` in a short transaction of its own, before the response leaves:
    no entry, no page.

    Unsealed, as `record` writes them. A unit of work of its own (whatever `session` had open
    was a read: on SQLite it ends first, on PostgreSQL the entry's transaction carries on from
    it, see `unit_of_work`). No chain lock: on PostgreSQL concurrent views insert side by side.
    On SQLite, whose writers take turns anyway, it queues on a file lock (`chain.append_lock`),
    which wakes the next writer sooner than SQLite's busy handler; should SQLite still report
    itself busy, this starts again a few times rather than refuse.
    """
    from portal.transactions import unit_of_work

    engine = session.get_bind().engine
    attempts = 5
    for attempt in range(attempts):
        try:
            with chain.append_lock(engine), unit_of_work(session) as s:
                chain.append(s.connection(), row)
            return
        except OperationalError:
            if attempt == attempts - 1 or engine.dialect.name != "sqlite":
                raise
            time.sleep(0.01 * (attempt + 1))

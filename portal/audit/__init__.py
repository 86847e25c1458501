"""Audit: one entry for every sensitive view and change, in the same transaction as the change.

Writes call `record()` inside the service that makes the change, so the entry commits or rolls
back with it. Reads are declared on the route with `@audited(...)`; `init_app` installs the
hook that records them once the view has answered. The log is append-only: the ORM refuses to
update or delete an entry here, and the database refuses it with triggers (initial migration).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from flask import Flask, Response, current_app, g, has_request_context, render_template, request
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapper, ORMExecuteState, Session

from portal.audit import chain
from portal.audit.declare import AuditSpec, audit_exempt, audit_spec_for, audited
from portal.db import utcnow
from portal.models import AuditAction, AuditEvent, AuditOutcome
from portal.models.owned import ImmutableRowError

log = logging.getLogger("portal.audit")

__all__ = [
    "AuditLogImmutableError",
    "AuditSpec",
    "audit_exempt",
    "audited",
    "init_app",
    "note_subject",
    "record",
]

#: Headers the error response keeps from the response it replaces (security, caching, tracing).
_KEPT_HEADERS = (
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "X-Frame-Options",
    "Permissions-Policy",
    "Strict-Transport-Security",
    "Vary",
    "X-Request-ID",
)


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


def _request_context() -> dict[str, Any]:
    if not has_request_context():
        return {"request_id": None, "client_addr": None, "user_agent": None}
    return {
        "request_id": g.get("request_id"),
        "client_addr": request.remote_addr,
        "user_agent": (request.user_agent.string or "")[:300] or None,
    }


def record(
    session: Session,
    *,
    actor_id: int | None,
    actor_role: str | None,
    action: AuditAction,
    entity_type: str,
    entity_id: int | str | None = None,
    patient_id: int | None = None,
    outcome: AuditOutcome = AuditOutcome.SUCCESS,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one entry to the chain in `session`'s transaction; it commits with the change.

    If the entry cannot be written this raises, and the caller's transaction (the change
    included) must roll back: a change is never kept without its entry.
    """
    event_ = AuditEvent(
        occurred_at=utcnow(),
        actor_id=actor_id,
        actor_role=None if actor_role is None else str(actor_role),
        action=action,
        entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id),
        patient_id=patient_id,
        outcome=outcome,
        detail=json.dumps(detail or {}, sort_keys=True, separators=(",", ":")),
        **_request_context(),
    )
    event_.prev_hash = chain.chain_head(session)
    event_.hash = chain.entry_hash(event_.prev_hash, event_)
    session.add(event_)
    session.flush()
    return event_


def note_subject(entity_type: str, entity_id: int, patient_id: int | None) -> None:
    """Tell the read hook which record this request showed (called by the access layer)."""
    if has_request_context() and "audit_subject" not in g:
        g.audit_subject = (entity_type, entity_id, patient_id)


def init_app(app: Flask) -> None:
    @app.before_request
    def _request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        ok = 0 < len(incoming) <= 64 and incoming.replace("-", "").isalnum()
        g.request_id = incoming if ok else uuid.uuid4().hex

    @app.after_request
    def _record_read(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        spec = audit_spec_for(app, request.endpoint)
        if spec is None or not current_app.config.get("AUDIT_ENABLED", True):
            return response
        try:
            _record_view(spec, response)
        except Exception:
            # Fail closed: a view whose reading could not be recorded is not delivered.
            log.exception("audit entry could not be written request_id=%s", g.get("request_id"))
            return _refusal(response)
        return response


def _outcome_for(status: int) -> AuditOutcome | None:
    """Which responses showed (or refused) a record: 2xx and re-rendered forms show it,
    403/404 refused it; redirects, other client errors and server errors show nothing."""
    if 200 <= status < 300 or status == 422:
        return AuditOutcome.SUCCESS
    if status in (403, 404):
        return AuditOutcome.DENIED
    return None


def _record_view(spec: AuditSpec, response: Response) -> None:
    from flask_login import current_user

    from portal.extensions import db

    outcome = _outcome_for(response.status_code)
    if outcome is None or not current_user.is_authenticated:
        return
    denied = outcome is AuditOutcome.DENIED
    subject = g.get("audit_subject")
    entity_type, entity_id, patient_id = subject or (spec.entity_type, None, None)
    if entity_id is None and spec.id_arg and request.view_args:
        entity_id = request.view_args.get(spec.id_arg)
    if patient_id is None and not denied:
        if request.view_args and "patient_id" in request.view_args:
            patient_id = request.view_args["patient_id"]
        elif current_user.patient is not None:
            patient_id = current_user.patient.id
    detail = {"status": response.status_code, "attempted": str(spec.action)} if denied else {}
    # The whole entry, and the JSON its hash covers, is ready before the lock is taken: inside
    # it there is only the head read, one hash, one INSERT and the COMMIT (see `_append`).
    row: dict[str, Any] = {
        "occurred_at": utcnow(),
        "actor_id": current_user.id,
        "actor_role": str(current_user.role),
        "action": AuditAction.ACCESS_DENIED if denied else spec.action,
        "entity_type": entity_type,
        "entity_id": None if entity_id is None else str(entity_id),
        "patient_id": patient_id,
        "outcome": outcome,
        "detail": json.dumps(detail, sort_keys=True, separators=(",", ":")),
        **_request_context(),
    }
    _append(db.session, row, chain.canonical_row(row))


def _append(session: Session, row: dict[str, Any], content: str) -> None:
    """Commit the entry `row` (canonical JSON `content`) in a short transaction of its own.

    Whatever `session` had open was a read and is ended first. On SQLite the transaction takes
    the write lock up front (`BEGIN IMMEDIATE`, see portal.db) after queueing on the append
    lock (`chain.append_lock`), so appenders wait their turn rather than fail; should SQLite
    still report itself busy, this starts again a few times rather than refuse.
    """
    engine = session.get_bind().engine
    attempts = 5
    for attempt in range(attempts):
        session.rollback()
        try:
            with chain.append_lock(engine):
                try:
                    conn = session.connection(execution_options={"sqlite_begin_immediate": True})
                    chain.append(conn, row, content)
                    session.commit()
                except Exception:
                    session.rollback()
                    raise
            return
        except OperationalError:
            if attempt == attempts - 1 or engine.dialect.name != "sqlite":
                raise
            time.sleep(0.01 * (attempt + 1))


def _refusal(original: Response) -> Response:
    """A 500 page in place of `original`, keeping its security headers and none of its body."""
    try:
        body = render_template(
            "errors/error.html",
            code=500,
            title="Something went wrong on our side",
            message="This page could not be shown just now; please try again in a moment.",
        )
    except Exception:
        body = "<!doctype html><title>Server error</title><p>Something went wrong.</p>"
    refused = current_app.response_class(body, status=500, mimetype="text/html")
    for name in _KEPT_HEADERS:
        for value in original.headers.getlist(name):
            refused.headers.add(name, value)
    refused.headers["Cache-Control"] = "no-store"
    original.close()
    return refused

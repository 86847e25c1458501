"""Audit: one entry for every sensitive view and change, in the same transaction as the change.

Writes call `record()` inside the service that makes the change, so the entry commits or rolls
back with it. Reads are declared on the route with `@audited(...)`; `init_app` installs the
hook that records them once the view has answered. The log is append-only: the ORM refuses to
update or delete an entry here, and the database refuses it with triggers, which let an UPDATE
do one thing only: fill an entry's empty seal, once (`chain.seal`, migration 0016).
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


def _channel() -> str:
    """Which door the request came through: the pages or the JSON API."""
    return "api" if request.path.startswith("/api/") else "page"


def _with_channel(detail: dict[str, Any] | None) -> dict[str, Any]:
    """`detail` plus the door and how the caller signed in (a browser session, an API token)."""
    detail = dict(detail or {})
    actor = g.get("actor") if has_request_context() else None
    if actor is not None:
        detail.setdefault("via", str(actor.via))
        detail.setdefault("channel", _channel())
    return detail


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
    """Write one entry in `session`'s transaction; it commits with the change.

    Unsealed: the worker's sealer links and signs it into the chain shortly after it commits
    (`chain.seal`), so no writer waits for the chain. If the entry cannot be written this
    raises, and the caller's transaction (the change included) must roll back: a change is
    never kept without its entry.
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
        detail=json.dumps(_with_channel(detail), sort_keys=True, separators=(",", ":")),
        **_request_context(),
    )
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
        # Always the server's own id: a client's X-Request-ID could forge or collide with
        # another request's entries. The client's value is only logged beside ours.
        g.request_id = uuid.uuid4().hex
        incoming = request.headers.get("X-Request-ID", "")
        if incoming and len(incoming) <= 64 and incoming.replace("-", "").isalnum():
            log.debug("request_id=%s client_request_id=%s", g.request_id, incoming)

    @app.after_request
    def _record_read(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        spec = audit_spec_for(app, request.endpoint)
        if spec is None or not current_app.config.get("AUDIT_ENABLED", True):
            return response
        if request.method not in _SHOWING_METHODS:
            return response
        try:
            _record_view(spec, response)
        except Exception as exc:
            # Fail closed: a view whose reading could not be recorded is not delivered.
            if _storage_full(exc):  # not a fault of the page: the operator's to fix, said so
                return _refusal(response, full=True)
            log.exception("audit entry could not be written request_id=%s", g.get("request_id"))
            return _refusal(response)
        return response


#: Requests whose response can show a record. OPTIONS and HEAD probes show nothing.
_SHOWING_METHODS = frozenset({"GET", "POST"})


def _outcome_for(status: int) -> AuditOutcome | None:
    """Which responses showed (or refused) a record: 2xx and re-rendered forms show it,
    403/404 refused it; redirects, other client errors and server errors show nothing."""
    if 200 <= status < 300 or status == 422:
        return AuditOutcome.SUCCESS
    if status in (403, 404):
        return AuditOutcome.DENIED
    return None


def _record_view(spec: AuditSpec, response: Response) -> None:
    from portal.auth.identity import signed_in_actor
    from portal.extensions import db

    outcome = _outcome_for(response.status_code)
    if outcome is AuditOutcome.SUCCESS and response.mimetype == "application/problem+json":
        return  # an API refusal (422) shows no record: only which input was refused
    actor = signed_in_actor() if outcome is not None else None
    if outcome is None or actor is None:
        return
    denied = outcome is AuditOutcome.DENIED
    subject = g.get("audit_subject")
    entity_type, entity_id, patient_id = subject or (spec.entity_type, None, None)
    if entity_id is None and spec.id_arg and request.view_args:
        entity_id = request.view_args.get(spec.id_arg)
    if patient_id is None and not denied:
        if request.view_args and "patient_id" in request.view_args:
            patient_id = request.view_args["patient_id"]
        elif actor.patient_id is not None:
            patient_id = actor.patient_id
    detail: dict[str, Any] = {"via": str(actor.via), "channel": _channel()}
    if denied:
        detail.update(status=response.status_code, attempted=str(spec.action))
    row: dict[str, Any] = {
        "occurred_at": utcnow(),
        "actor_id": actor.user_id,
        "actor_role": str(actor.role),
        "action": AuditAction.ACCESS_DENIED if denied else spec.action,
        "entity_type": entity_type,
        "entity_id": None if entity_id is None else str(entity_id),
        "patient_id": patient_id,
        "outcome": outcome,
        "detail": json.dumps(detail, sort_keys=True, separators=(",", ":")),
        **_request_context(),
    }
    _append(db.session, row)


def _append(session: Session, row: dict[str, Any]) -> None:
    """Commit the unsealed entry `row` in a short transaction of its own, before the response
    leaves: no entry, no page.

    A unit of work of its own (whatever `session` had open was a read: on SQLite it ends first,
    on PostgreSQL the entry's transaction carries on from it, see `unit_of_work`). No chain
    lock: on PostgreSQL concurrent views insert side by side. On SQLite, whose writers take
    turns anyway, it queues on a file lock (`chain.append_lock`), which wakes the next writer
    sooner than SQLite's busy handler; should SQLite still report itself busy, this starts
    again a few times rather than refuse.
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


def _storage_full(exc: Exception) -> bool:
    """The entry found no room in the database (logged here, once, for the operator)."""
    from portal.services.errors import StorageFull
    from portal.transactions import is_storage_full, log_storage_full

    if isinstance(exc, StorageFull):  # `unit_of_work` recognised and logged it
        return True
    if is_storage_full(exc):
        log_storage_full(exc)
        return True
    return False


def _refusal(original: Response, *, full: bool = False) -> Response:
    """A 500 page (problem+json under /api/) in place of `original`, keeping its security
    headers and none of its body; with `full`, the 507 of a database with no room."""
    from portal.api.errors import is_api_request, problem
    from portal.errors import storage_full_response

    if full:
        refused = storage_full_response()
    else:
        refused = problem(500) if is_api_request() else _error_page()
    for name in _KEPT_HEADERS:
        for value in original.headers.getlist(name):
            refused.headers.add(name, value)
    refused.headers["Cache-Control"] = "no-store"
    original.close()
    return refused


def _error_page() -> Response:
    try:
        body = render_template(
            "errors/error.html",
            code=500,
            title="Something went wrong on our side",
            message="This page could not be shown just now; please try again in a moment.",
        )
    except Exception:
        body = "<!doctype html><title>Server error</title><p>Something went wrong.</p>"
    return current_app.response_class(body, status=500, mimetype="text/html")

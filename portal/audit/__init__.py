"""Audit: one entry for every sensitive view and change, in the same transaction as the change.

Writes call `record()` inside the service that makes the change, so the entry commits or rolls
back with it. Reads are declared on the route with `@audited(...)`; `init_app` installs the
hook that records them once the view has answered.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from flask import Flask, Response, current_app, g, has_request_context, request
from sqlalchemy.orm import Session

from portal.audit.chain import chain_head, entry_hash
from portal.audit.declare import AuditSpec, audit_exempt, audit_spec_for, audited
from portal.db import utcnow
from portal.models import AuditAction, AuditEvent, AuditOutcome

log = logging.getLogger("portal.audit")

__all__ = ["AuditSpec", "audited", "audit_exempt", "init_app", "record", "note_subject"]


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
    """Append one entry to the chain in `session`'s transaction; it commits with the change."""
    event = AuditEvent(
        occurred_at=utcnow(),
        actor_id=actor_id,
        actor_role=actor_role,
        action=action,
        entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id),
        patient_id=patient_id,
        outcome=outcome,
        detail=json.dumps(detail or {}, sort_keys=True, separators=(",", ":")),
        **_request_context(),
    )
    event.prev_hash = chain_head(session)
    event.hash = entry_hash(event.prev_hash, event)
    session.add(event)
    session.flush()
    return event


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
        if response.status_code >= 500 or response.status_code in (401,):
            return response
        _record_view(spec, response)
        return response


def _record_view(spec: AuditSpec, response: Response) -> None:
    from flask_login import current_user

    from portal.extensions import db

    if not current_user.is_authenticated:
        return
    denied = response.status_code in (403, 404)
    subject = g.get("audit_subject")
    entity_type, entity_id, patient_id = subject or (spec.entity_type, None, None)
    if entity_id is None and spec.id_arg and request.view_args:
        entity_id = request.view_args.get(spec.id_arg)
    if patient_id is None:
        if request.view_args and "patient_id" in request.view_args:
            patient_id = request.view_args["patient_id"] if not denied else None
        elif current_user.patient is not None:
            patient_id = current_user.patient.id
    session = db.session
    # Whatever the view left open was a read; the entry goes in its own short transaction.
    session.rollback()
    try:
        record(
            session,
            actor_id=current_user.id,
            actor_role=str(current_user.role),
            action=AuditAction.ACCESS_DENIED if denied else spec.action,
            entity_type=entity_type,
            entity_id=entity_id,
            patient_id=patient_id,
            outcome=AuditOutcome.DENIED if denied else AuditOutcome.SUCCESS,
        )
        session.commit()
    except Exception:
        session.rollback()
        log.exception("audit entry could not be written request_id=%s", g.get("request_id"))
        raise

"""The read hook: one audit entry for each response of an audited route that showed a record.

A route declares what it shows with `@audited(action, entity, id_arg=...)` (pages and API
alike); the record's id then comes from the URL, and its patient from the URL or, for a
patient, from the reader. A screen whose URL does not say whose record it shows (a staff page
of one result, a thread) names it with `shows(...)`, from what its read model returned. Nothing
else decides it: fetching records (`access.get_or_404`) has no side effect, so the order of a
view's reads cannot change its entry. The entry commits before the response leaves; when it
cannot, the response is not delivered (fail closed).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, TypeVar

from flask import Flask, Response, current_app, g, render_template, request

from portal import audit
from portal.actor import Actor, Door
from portal.audit import AuditSpec, Subject, audit_spec_for
from portal.models import AuditAction, AuditOutcome
from portal.web import doors
from portal.web.problems import problem

log = logging.getLogger("portal.audit")


class _PatientOwned(Protocol):
    @property
    def patient_id(self) -> int: ...


R = TypeVar("R", bound=_PatientOwned)

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

#: Requests whose response can show a record. OPTIONS and HEAD probes show nothing.
_SHOWING_METHODS = frozenset({"GET", "POST"})


class SubjectAlreadyNamed(RuntimeError):
    """A screen named two different records as what one response showed."""


def shows(subject: Subject) -> None:
    """Name the record this response shows, when its route's URL does not say it all.

    Called by the view with what its read model returned, once: a second, different subject is
    a mistake in the view (one screen, one subject), not a first-wins race."""
    named: Subject | None = g.get("audit_subject")
    if named is not None and named != subject:
        raise SubjectAlreadyNamed(f"{named} then {subject}")
    g.audit_subject = subject


def shows_patient(patient_id: int) -> None:
    """Name whose record this response shows, when its URL does not say it; what record it is
    stays the route's declaration (`@audited(action, entity, id_arg)`)."""
    named: int | None = g.get("audit_patient")
    if named is not None and named != patient_id:
        raise SubjectAlreadyNamed(f"patient {named} then {patient_id}")
    g.audit_patient = patient_id


def shown(row: R) -> R:
    """`row`, a patient's record fetched by the view, is whose record this response shows."""
    shows_patient(row.patient_id)
    return row


def _outcome_for(status: int) -> AuditOutcome | None:
    """Which responses showed (or refused) a record: 2xx and re-rendered forms show it,
    403/404 refused it; redirects, other client errors and server errors show nothing."""
    if 200 <= status < 300 or status == 422:
        return AuditOutcome.SUCCESS
    if status in (403, 404):
        return AuditOutcome.DENIED
    return None


def subject_of(spec: AuditSpec, actor: Actor, *, denied: bool) -> Subject:
    """What the response showed: the screen's own word (`shows`) or what its route declares."""
    named: Subject | None = g.get("audit_subject")
    args = request.view_args or {}
    entity_type = spec.entity_type if named is None else named.entity_type
    entity_id = args.get(spec.id_arg) if named is None and spec.id_arg else None
    patient_id: int | None = g.get("audit_patient")
    if named is not None:
        entity_id, patient_id = named.entity_id, named.patient_id
    if patient_id is None and not denied:
        if "patient_id" in args:
            patient_id = args["patient_id"]
        elif actor.patient_id is not None:
            patient_id = actor.patient_id
    return Subject(entity_type, entity_id, patient_id)


def _record_view(spec: AuditSpec, response: Response) -> None:
    from portal.extensions import db
    from portal.web.identity import record_actor

    outcome = _outcome_for(response.status_code)
    if outcome is AuditOutcome.SUCCESS and response.mimetype == "application/problem+json":
        return  # an API refusal (422) shows no record: only which input was refused
    actor = record_actor() if outcome is not None else None
    if outcome is None or actor is None:
        return
    denied = outcome is AuditOutcome.DENIED
    detail: dict[str, Any] = {}
    if denied:
        detail.update(status=response.status_code, attempted=str(spec.action))
    audit.commit_read(
        db.session,
        actor,
        AuditAction.ACCESS_DENIED if denied else spec.action,
        subject_of(spec, actor, denied=denied),
        outcome=outcome,
        detail=detail,
    )


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
    if full:
        refused = doors.storage_full_refusal()
    else:
        refused = problem(500) if doors.current() is Door.API else _error_page()
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


def init_app(app: Flask) -> None:
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


__all__ = ["SubjectAlreadyNamed", "init_app", "shows", "shown", "shows_patient", "subject_of"]

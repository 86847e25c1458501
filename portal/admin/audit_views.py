"""The audit report for administrators: filter, page through and export the log."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

from flask import Response, abort, request, stream_with_context
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _p
from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Email, Optional

from portal.admin import bp
from portal.audit import audit_exempt, audited
from portal.audit.report import AuditFilters, audit_events, iter_audit_events
from portal.audit.report import record_export as record_audit_export
from portal.db import utcnow
from portal.extensions import db
from portal.models import AuditAction, AuditOutcome, Entity
from portal.transactions import unit_of_work
from portal.web.htmx import render
from portal.web.identity import current_actor
from portal.web.lists import answer, page_of

# ASCII digits only: `"²".isdigit()` is True but `int("²")` raises.
_LIMIT = re.compile(r"[0-9]{1,6}")

CSV_COLUMNS = (
    "id",
    "occurred_at",
    "actor_email",
    "actor_role",
    "action",
    "entity_type",
    "entity_id",
    "patient_name",
    "patient_mrn",
    "outcome",
    "request_id",
    "client_addr",
    "user_agent",
)


#: The page's words for each action and outcome, in the reader's language. The CSV keeps the
#: stored names: programs read it, and exports are compared with each other.
ACTION_NAMES: dict[AuditAction, LazyString] = {
    AuditAction.VIEW: _p("audit action", "View"),
    AuditAction.CREATE: _p("audit action", "Create"),
    AuditAction.UPDATE: _p("audit action", "Update"),
    AuditAction.PUBLISH: _p("audit action", "Publish"),
    AuditAction.CORRECT: _p("audit action", "Correct"),
    AuditAction.RELEASE: _p("audit action", "Release"),
    AuditAction.REVIEW: _p("audit action", "Review"),
    AuditAction.ACKNOWLEDGE: _p("audit action", "Acknowledge"),
    AuditAction.DOWNLOAD: _p("audit action", "Download"),
    AuditAction.SEND: _p("audit action", "Send"),
    AuditAction.CANCEL: _p("audit action", "Cancel"),
    AuditAction.ACTIVATE: _p("audit action", "Activate"),
    AuditAction.COMPLETE: _p("audit action", "Complete"),
    AuditAction.ASSIGN: _p("audit action", "Assign"),
    AuditAction.UNASSIGN: _p("audit action", "Unassign"),
    AuditAction.DEACTIVATE: _p("audit action", "Deactivate"),
    AuditAction.EXPORT: _p("audit action", "Export"),
    AuditAction.DELETE: _p("audit action", "Delete"),
    AuditAction.SIGN_IN: _p("audit action", "Sign in"),
    AuditAction.SIGN_IN_FAILED: _p("audit action", "Sign in failed"),
    AuditAction.SIGN_OUT: _p("audit action", "Sign out"),
    AuditAction.PASSWORD_CHANGE: _p("audit action", "Password change"),
    AuditAction.ACCESS_DENIED: _p("audit action", "Access denied"),
}
OUTCOME_NAMES: dict[AuditOutcome, LazyString] = {
    AuditOutcome.SUCCESS: _p("audit outcome", "Success"),
    AuditOutcome.DENIED: _p("audit outcome", "Denied"),
    AuditOutcome.FAILURE: _p("audit outcome", "Failure"),
}


class AuditFilterForm(FlaskForm):
    """The report's filters: a GET form, so no CSRF token (it changes nothing)."""

    class Meta:
        csrf = False

    patient = StringField(
        _l("Patient"), validators=[Optional()], description=_l("MRN, or part of the patient's name")
    )
    actor = EmailField(_l("Actor email"), validators=[Optional(), Email()])
    action = SelectField(
        _l("Action"),
        choices=[SelectChoice("", _l("Any action"))]
        + [SelectChoice(a.value, ACTION_NAMES[a]) for a in AuditAction],
        validators=[Optional()],
    )
    date_from = DateField(_l("From (UTC)"), validators=[Optional()])
    date_to = DateField(_l("To (UTC, inclusive)"), validators=[Optional()])

    def filters(self) -> AuditFilters:
        return AuditFilters(
            patient=(self.patient.data or "").strip() or None,
            actor_email=(self.actor.data or "").strip() or None,
            action=AuditAction(self.action.data) if self.action.data else None,
            date_from=self.date_from.data,
            date_to=self.date_to.data,
        )


def _form() -> AuditFilterForm:
    return AuditFilterForm(formdata=request.args)


def _query_args(form: AuditFilterForm) -> dict[str, str]:
    """The filters as URL arguments, for the next page and the CSV link."""
    names = ("patient", "actor", "action", "date_from", "date_to")
    return {n: v for n in names if (v := request.args.get(n, "").strip())}


def _limit_arg() -> int | None:
    """The `limit` query argument (the report clamps it); 404 unless it is ASCII digits."""
    raw = request.args.get("limit", "")
    if not raw:
        return None
    if not _LIMIT.fullmatch(raw):
        abort(404)
    return int(raw)


@bp.get("/audit")
@audited(AuditAction.VIEW, Entity.AUDIT_LOG)
def audit_log() -> tuple[str, int] | str:
    form = _form()
    valid = form.validate()
    actor, limit = current_actor(), _limit_arg()
    page, cursor_error = None, None
    if valid:
        page, cursor_error = page_of(
            lambda cursor: audit_events(db.session, actor, form.filters(), cursor, limit)
        )
    body = render(
        "admin/audit_log.html",
        fragment="audit_results",
        form=form,
        page=page,
        args=_query_args(form),
        cursor_error=cursor_error,
        action_names=ACTION_NAMES,
        outcome_names=OUTCOME_NAMES,
    )
    return answer(body, cursor_error, status=200 if valid else 422)


@bp.get("/audit.csv")
@audit_exempt  # records the export itself (as `export`, naming the filters used)
def audit_log_csv() -> Response:
    form = _form()
    if not form.validate():
        abort(422)  # the page's export link carries valid filters only
    actor, filters = current_actor(), form.filters()
    # The export is recorded (and committed) before the first row leaves.
    with unit_of_work() as session:
        record_audit_export(session, actor, filters)

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)

        def flush() -> str:
            text = buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            return text

        writer.writerow(CSV_COLUMNS)
        yield flush()
        for row in iter_audit_events(session, actor, filters):
            # Every cell, not only the free-text ones: an email address may begin with "-".
            cells = (
                row.id,
                row.occurred_at.isoformat().replace("+00:00", "Z"),
                row.actor_email,
                row.actor_role,
                row.action,
                row.entity_type,
                row.entity_id,
                row.patient_name,
                row.patient_mrn,
                row.outcome,
                row.request_id,
                row.client_addr,
                row.user_agent,
            )
            writer.writerow([_safe_cell(None if c is None else str(c)) for c in cells])
            yield flush()

    filename = f"audit-log-{utcnow():%Y%m%dT%H%M%SZ}.csv"
    return Response(
        stream_with_context(rows()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _safe_cell(value: str | None) -> str:
    """Neutralise spreadsheet formulas in free text (CSV injection)."""
    if not value:
        return ""
    return "'" + value if value[0] in "=+-@\t\r" else value

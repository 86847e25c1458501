"""The audit report for administrators: filter, page through and export the log."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from flask import Response, request, stream_with_context
from flask_wtf import FlaskForm
from werkzeug.exceptions import BadRequest
from wtforms import DateField, EmailField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Email, Optional

from portal.admin import bp
from portal.audit import audit_exempt, audited
from portal.audit.report import AuditFilters, InvalidCursor, audit_events, iter_audit_events
from portal.audit.report import record_export as record_audit_export
from portal.auth.identity import current_actor
from portal.db import utcnow
from portal.extensions import db
from portal.models import AuditAction
from portal.web.htmx import render

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


class AuditFilterForm(FlaskForm):
    """The report's filters: a GET form, so no CSRF token (it changes nothing)."""

    class Meta:
        csrf = False

    patient = StringField(
        "Patient", validators=[Optional()], description="MRN, or part of the patient's name"
    )
    actor = EmailField("Actor email", validators=[Optional(), Email()])
    action = SelectField(
        "Action",
        choices=[SelectChoice("", "Any action")]
        + [SelectChoice(a.value, a.value.replace("_", " ")) for a in AuditAction],
        validators=[Optional()],
    )
    date_from = DateField("From (UTC)", validators=[Optional()])
    date_to = DateField("To (UTC, inclusive)", validators=[Optional()])

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


@bp.get("/audit")
@audited(AuditAction.VIEW, "audit_log")
def audit_log() -> tuple[str, int] | str:
    form = _form()
    valid = form.validate()
    page = None
    if valid:
        try:
            page = audit_events(
                db.session,
                current_actor(),
                form.filters(),
                cursor=request.args.get("cursor"),
                limit=request.args.get("limit", type=int),
            )
        except InvalidCursor as exc:
            raise BadRequest() from exc
    body = render(
        "admin/audit_log.html",
        fragment="audit_results",
        form=form,
        page=page,
        args=_query_args(form),
        paged=bool(request.args.get("cursor")),
    )
    return body if valid else (body, 422)


@bp.get("/audit.csv")
@audit_exempt  # records the export itself (as `export`, naming the filters used)
def audit_log_csv() -> Response:
    form = _form()
    if not form.validate():
        raise BadRequest()
    actor, filters = current_actor(), form.filters()
    session = db.session
    record_audit_export(session, actor, filters)
    session.commit()

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
            writer.writerow(
                [
                    row.id,
                    row.occurred_at.isoformat().replace("+00:00", "Z"),
                    row.actor_email or "",
                    row.actor_role or "",
                    row.action,
                    row.entity_type,
                    row.entity_id or "",
                    _safe_cell(row.patient_name),
                    _safe_cell(row.patient_mrn),
                    row.outcome,
                    row.request_id or "",
                    row.client_addr or "",
                    _safe_cell(row.user_agent),
                ]
            )
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

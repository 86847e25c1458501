"""The floor under issue 13's pages: the portal's app with two bench-only routes beside its own,
each the anchors' minimal page (the same 20 rows, the same small template, no layout) plus one
of the rules every PHI page keeps.

    /floor/signed-in   the signed-in check (session row, account) + the 20 rows read through
                       the reader's scope (labs.latest_rows), not audited
    /floor/audited     the same, audited: its entry committed before the response leaves

Served and measured by `bench/pages.sh`, after the pages; never part of the product (the
routes exist only in this module's app). What the two cost against the anchors' minimal page
is what no template or query work on the real pages can win back.
"""

from __future__ import annotations

from flask import Blueprint, render_template
from portal.auth.identity import current_actor

from portal import create_app
from portal.audit.declare import audit_exempt, audited
from portal.extensions import db
from portal.models import AuditAction
from portal.services import labs

# The anchors' templates/labs.html, with the portal's row shape (LAB_ROW_COLUMNS).
TEMPLATE = """<!doctype html>
<html><head><title>Lab results</title></head>
<body><h1>Lab results</h1>
<table>
<tr><th>Published</th><th>Test</th><th>Result</th><th>Units</th><th>Reference</th><th>Status</th></tr>
{% for r in rows %}<tr><td>{{ r.published_at.strftime('%Y-%m-%d') }}</td>
<td>{{ r.test_name }} ({{ r.test_code }})</td><td>{{ r.result_value }}</td><td>{{ r.units }}</td>
<td>{{ r.reference_range }}</td><td>{{ r.status }}</td></tr>
{% endfor %}</table></body></html>"""

bp = Blueprint("floor", __name__, url_prefix="/floor")


def _rows() -> str:
    actor = current_actor()
    page = labs.latest_rows(db.session, actor, labs.LabFilter(), limit=20)
    return render_template(_template, rows=page.rows)


@bp.get("/signed-in")
@audit_exempt  # bench only: the audited twin below is the real rule
def signed_in() -> str:
    return _rows()


@bp.get("/audited")
@audited(AuditAction.VIEW, "lab_result_list")
def audited_rows() -> str:
    return _rows()


app = create_app()
app.register_blueprint(bp)
_template = app.jinja_env.from_string(TEMPLATE)  # compiled once, as a file template would be

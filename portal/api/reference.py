"""The API's own description: `GET /api/v1/openapi.json`, and a readable reference at /api/docs."""

from __future__ import annotations

from flask import Response, jsonify, render_template

from portal.api import bp
from portal.api.spec import document
from portal.audit import audit_exempt


@bp.get("/openapi.json")
@audit_exempt
def openapi() -> Response:
    """The OpenAPI 3.1 document of everything under /api/v1."""
    return jsonify(document())


@audit_exempt
def reference() -> str:
    """The same document as a page (served at /api/docs): no script, so it works under the
    portal's CSP without any asset from elsewhere."""
    return render_template("api/reference.html", spec=document())

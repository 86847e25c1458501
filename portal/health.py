"""`/healthz` and `/readyz` for load balancers and orchestrators (docs/operations.md).

Both answer anyone, with no session, audit entry or patient data: a status in plain JSON,
never cached. `/healthz` says the process answers (it reads nothing); `/readyz` that the
database answers and its schema is at the migrations' head, so a worker is taken out of
rotation while the database is down or a deploy's `db upgrade` has not run yet.
"""

from __future__ import annotations

from functools import cache

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, json
from sqlalchemy.exc import SQLAlchemyError

from portal.audit import audit_exempt
from portal.cli import alembic_config

bp = Blueprint("health", __name__)


def _answer(status: int, body: dict[str, str]) -> Response:
    response = current_app.response_class(
        json.dumps(body), status=status, mimetype="application/json"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
@audit_exempt  # no record, no reader: the process answering is the whole answer
def healthz() -> Response:
    return _answer(200, {"status": "ok"})


@cache
def _migration_heads(url: str) -> frozenset[str]:
    """The revisions the code's migrations end at (read once: they change only on deploy)."""
    return frozenset(ScriptDirectory.from_config(alembic_config(url)).get_heads())


@bp.get("/readyz")
@audit_exempt  # reads only the schema's revision, never a record
def readyz() -> Response:
    engine = current_app.extensions["portal.db"]["engine"]
    try:
        with engine.connect() as conn:
            current = frozenset(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError as exc:
        # Nothing of the error (host names, paths) is told to an unauthenticated caller.
        current_app.logger.warning("readyz: the database did not answer (%s)", type(exc).__name__)
        return _answer(503, {"status": "not ready", "database": "unreachable"})
    at_head = current == _migration_heads(current_app.config["DATABASE_URL"])
    return _answer(
        200 if at_head else 503,
        {
            "status": "ready" if at_head else "not ready",
            "database": "reachable",
            "migrations": "at head" if at_head else "not at head",
        },
    )

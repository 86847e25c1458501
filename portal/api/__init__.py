"""The JSON API under /api/v1 (what it promises: docs/api.md): a thin door onto the same
services, policy, transactions and audit as the pages. Its modules declare operations
(`operations.operation`) with pydantic models; `spec` turns them into the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, request
from flask_wtf.csrf import CSRFError
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from portal.api import errors
from portal.extensions import csrf
from portal.models import AuthMethod
from portal.services.errors import ServiceError
from portal.web.identity import signed_in_actor

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # bearer tokens are not sent by browsers on their own; cookies: see below

#: Operations anyone may call: getting a token and reading the API's description.
PUBLIC = {"api.issue_token", "api.openapi"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@bp.before_request
def _authenticate() -> Response | None:
    if request.endpoint in PUBLIC:
        return None
    actor = signed_in_actor()
    if actor is None:
        return errors.problem(401)
    if actor.via is AuthMethod.SESSION and request.method in UNSAFE:
        # A browser's cookie rides along on any site's request: changes need the CSRF token.
        csrf.protect()
    return None


@bp.errorhandler(ServiceError)
def _refused(exc: ServiceError) -> Response:
    return errors.from_service(exc)


@bp.errorhandler(ValidationError)
def _validation(exc: ValidationError) -> Response:
    return errors.from_invalid(errors.invalid(exc, "body"))


@bp.errorhandler(CSRFError)
def _csrf(_exc: CSRFError) -> Response:
    return errors.problem(400, "Send the X-CSRFToken header with a browser session.")


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException) -> Response:
    return errors.from_http(exc)


def init_app(app: Flask) -> None:
    from portal.api import (  # noqa: F401  (each module registers its operations)
        appointments,
        audit,
        messaging,
        patients,
        plans,
        proxies,
        record,
        reference,
        tokens,
        users,
    )

    app.register_blueprint(bp)
    app.add_url_rule("/api/docs", "api_reference", reference.reference)

    @app.errorhandler(errors.InvalidRequest)
    def _invalid(exc: errors.InvalidRequest) -> Response:
        return errors.from_invalid(exc)

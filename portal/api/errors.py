"""Every error under /api/ is application/problem+json (RFC 9457): never an HTML page."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, json, request
from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from werkzeug.exceptions import HTTPException

from portal.services.errors import ServiceError

TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Server error",
    503: "Service unavailable",
    507: "Insufficient storage",
}

DETAILS = {
    401: "Send a valid token: Authorization: Bearer <token> (POST /api/v1/auth/token).",
    403: "Your account, or the way you signed in, does not allow this.",
    404: "There is nothing here, or it is not yours to see.",
    500: "Something went wrong on our side; nothing was changed.",
}


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def problem(
    status: int, detail: str | None = None, errors: dict[str, list[str]] | None = None
) -> Response:
    """A problem+json response; 401s also say how to authenticate."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail if detail is not None else DETAILS.get(status),
    }
    if errors is not None:
        body["errors"] = errors
    response = current_app.response_class(
        json.dumps(body), status=status, mimetype="application/problem+json"
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="portal"'
    return response


def from_http(exc: HTTPException) -> Response:
    """The exception as a problem, keeping the headers it carries (a 405's `Allow`, which
    RFC 9110 requires; a 429's `Retry-After`); the body and its type are ours."""
    code = exc.code or 500
    # werkzeug's own descriptions are generic and safe; ours (401/403/404/500) say more.
    detail = DETAILS.get(code) or exc.description
    response = problem(code, detail)
    for name, value in exc.get_headers():
        if name.lower() != "content-type" and name not in response.headers:
            response.headers[name] = value
    return response


class InvalidRequest(Exception):
    """The query or body did not validate: each refused field with its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("invalid request")
        self.errors = errors


def invalid(exc: ValidationError, where: str) -> InvalidRequest:
    """Each refused field by its camelCase path from the request's side (`body.startAt`)."""
    errors: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False, include_input=False):
        path = ".".join([where, *(str(p) for p in error["loc"])])
        errors.setdefault(path, []).append(error["msg"])
    return InvalidRequest(errors)


def from_invalid(exc: InvalidRequest) -> Response:
    return problem(422, "Some of the input could not be accepted.", exc.errors)


def from_service(exc: ServiceError) -> Response:
    field = to_camel(exc.field) if exc.field else "request"
    return problem(exc.status, exc.message, {field: [exc.message]})

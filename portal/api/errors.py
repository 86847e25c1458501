"""Every error under /api/ is application/problem+json (RFC 9457): never an HTML page."""

from __future__ import annotations

from flask import Response
from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from werkzeug.exceptions import HTTPException

from portal.actor import Door
from portal.services.errors import ServiceError
from portal.web import doors
from portal.web.problems import DETAILS, problem


def is_api_request() -> bool:
    """Did this request come through the JSON API's door?"""
    return doors.current() is Door.API


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

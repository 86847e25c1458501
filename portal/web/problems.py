"""problem+json (RFC 9457): how the doors for programs (the JSON API, the socket's handshake)
say no. Never an HTML page there."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, json

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


__all__ = ["DETAILS", "TITLES", "problem"]

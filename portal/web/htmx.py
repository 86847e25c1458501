"""One URL, full page or fragment; and the headers every response carries."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, render_template, request
from jinja2_fragments.flask import render_block

from portal.web.identity import signed_in_actor

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def is_partial_request() -> bool:
    """An htmx request for a piece of the page: not a boosted navigation or a history restore."""
    h = request.headers
    return (
        h.get("HX-Request") == "true"
        and h.get("HX-Boosted") != "true"
        and h.get("HX-History-Restore-Request") != "true"
    )


def render(template: str, *, fragment: str | None = None, **context: Any) -> str:
    """The whole page, or only the block named `fragment` when htmx asked for a piece."""
    if fragment and is_partial_request():
        return render_block(template, fragment, **context)
    return render_template(template, **context)


def init_app(app: Flask) -> None:
    @app.after_request
    def _security_headers(response: Response) -> Response:
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if app.config["SESSION_COOKIE_SECURE"]:
            h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        h.add("Vary", "HX-Request")
        if request.endpoint != "static" and signed_in_actor() is not None:
            # PHI must not stay in browser or proxy caches, nor in the back/forward cache.
            h["Cache-Control"] = "no-store"
        return response

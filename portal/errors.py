"""Error pages: the same look as the rest of the portal, and nothing about what exists."""

from __future__ import annotations

import logging

from flask import Flask, Response, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from portal.api.errors import from_http, is_api_request, problem
from portal.transactions import discard

log = logging.getLogger(__name__)

#: The error page when even the template cannot be rendered: no database, nothing to read.
_PLAIN_500 = (
    '<!doctype html><html lang="en"><title>Something went wrong</title>'
    "<main><h1>Something went wrong on our side</h1>"
    "<p>Please try again in a moment.</p></main></html>"
)

#: Translated when the page is drawn, in the reader's language.
MESSAGES = {
    400: (_l("Something was wrong with that request"), _l("Please go back and try again.")),
    403: (_l("You cannot open this page"), _l("Your account does not give access to this page.")),
    404: (_l("Page not found"), _l("There is nothing here, or it is not yours to see.")),
    405: (_l("That did not work"), _l("This page cannot be used that way.")),
    409: (
        _l("That was just done"),
        _l("Someone (perhaps you, in another tab) just did this. Please reload the page."),
    ),
    413: (
        _l("That was too much to send at once"),
        _l(
            "The server stopped reading it. Go back with your browser: what you typed is usually "
            "still there. Attach fewer or smaller files (the form says how many and how large)."
        ),
    ),
    422: (_l("Please check what you entered"), _l("Some of it could not be accepted.")),
    429: (_l("Too many attempts"), _l("Please wait a few minutes and try again.")),
}


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(_exc: CSRFError) -> tuple[str, int]:
        return render_template(
            "errors/error.html",
            code=400,
            title=_("This form has expired"),
            message=_("Please reload the page and submit it again."),
        ), 400

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[str, int] | HTTPException | Response:
        if is_api_request():  # no route matched under /api/: still problem+json
            return from_http(exc)
        code = exc.code or 500
        if code not in MESSAGES:
            return exc
        title, message = MESSAGES[code]
        return render_template("errors/error.html", code=code, title=title, message=message), code

    @app.errorhandler(500)
    def _server(_exc: Exception) -> tuple[str, int] | Response:
        try:
            # The failure may have left the session refusing every statement (a failed flush:
            # PendingRollbackError), and the page reads the navigation's badge.
            discard()
        except Exception:  # the database itself is gone: the page below still renders
            log.warning("could not end the failed request's transaction", exc_info=True)
        if is_api_request():
            return problem(500)
        try:
            return render_template(
                "errors/error.html",
                code=500,
                title=_("Something went wrong on our side"),
                message=_("Nothing you entered was lost on purpose; please try again in a moment."),
            ), 500
        except Exception:  # never a second failure in place of the error page
            log.warning("the error page could not be rendered", exc_info=True)
            return _PLAIN_500, 500

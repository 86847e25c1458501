"""Error pages: the same look as the rest of the portal, and nothing about what exists."""

from __future__ import annotations

import logging

from flask import Flask, Response, g, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from portal.api.errors import from_http, is_api_request, problem
from portal.extensions import login_manager
from portal.services.errors import StorageFull
from portal.transactions import discard, is_storage_full, log_storage_full
from portal.web import doors

log = logging.getLogger(__name__)

#: The error page when even the template cannot be rendered: no database, nothing to read.
_PLAIN_500 = (
    '<!doctype html><html lang="en"><title>Something went wrong</title>'
    "<main><h1>Something went wrong on our side</h1>"
    "<p>Please try again in a moment.</p></main></html>"
)

#: Seconds a client is asked to wait when the database cannot be reached.
RETRY_AFTER = 5

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

    @app.errorhandler(StorageFull)
    def _storage_full(_exc: StorageFull) -> Response:
        # A change refused by a full disk where no form shows it (`unit_of_work` logged it).
        return doors.storage_full_refusal()

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeout)
    def _database_unavailable(exc: Exception) -> Response:
        """The database cannot be reached (stopped, restarting, out of connections): 503 and a
        calm word, never a stack trace. The change's transaction rolled back with it, so
        nothing was half-written; the pool's pre-ping finds the database again when it is back.
        A database that is there but cannot grow (disk full) is said as such: 507.
        """
        if is_storage_full(exc):
            log_storage_full(exc)
            return doors.storage_full_refusal()
        # The class only: a database error's text can quote the statement.
        log.warning("database unavailable: %s", type(exc.__cause__ or exc).__name__)
        # Nobody can be looked up now: the page's layout (and flask-login's template context)
        # must show nobody as signed in instead of asking the database again.
        g._login_user = login_manager.anonymous_user()
        g.actor = None
        try:
            discard()
        except Exception:  # noqa: BLE001 - the connection is already gone; nothing to undo
            log.debug("rollback after a lost connection failed", exc_info=True)
        if is_api_request():
            response = problem(503, "The service is briefly unavailable. Please try again.")
        else:
            response = Response(
                render_template(
                    "errors/error.html",
                    code=503,
                    title=_("The portal is briefly unavailable"),
                    message=_(
                        "We could not reach our records just now, so nothing was saved. "
                        "Please try again in a minute."
                    ),
                ),
                status=503,
            )
        response.headers["Retry-After"] = str(RETRY_AFTER)
        return response

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

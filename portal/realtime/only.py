"""The `ws:` process's application: the portal's `/ws` and nothing else (issue 21, point 6).

The `ws:` process runs gunicorn's threaded worker with a thousand threads (each open socket
holds one). Served whole there, the pages and the API would run a thousand at once on one
process, past what `web:` (one sync worker per core) was sized and tested for, and would
reach the database from a door the proxy was never meant to open. So it answers every other
path with a plain 404, before Flask sees the request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

#: The one path the `ws:` process serves (`portal.realtime.ws`).
SOCKET_PATH = "/ws"
_REFUSAL = b"Not found: this process serves only /ws.\n"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def sockets_only(app: WSGIApp) -> WSGIApp:
    """`app` for `/ws` alone; 404 for every other path."""

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == SOCKET_PATH:
            return app(environ, start_response)
        start_response(
            "404 Not Found",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(_REFUSAL))),
                ("Cache-Control", "no-store"),
                ("X-Content-Type-Options", "nosniff"),
            ],
        )
        return [_REFUSAL]

    return serve

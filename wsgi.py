"""The WSGI entry points: `gunicorn wsgi:app` (the `web:` process), `gunicorn wsgi:ws_app` (the
`ws:` process: `/ws` only), `flask --app wsgi ...`."""

from portal import create_app
from portal.realtime.only import sockets_only

app = create_app()
ws_app = sockets_only(app)

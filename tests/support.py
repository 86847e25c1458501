"""Test databases: a fresh SQLite file, or a fresh database on the PostgreSQL server that
TEST_DATABASE_URL names (scripts/with-postgres.sh starts a throwaway one)."""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

PASSWORD = "Demo-Portal-2026!"
CHEAP_ARGON2 = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


def postgres_server_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or None


def backend() -> str:
    return "postgresql" if postgres_server_url() else "sqlite"


def new_database(tmp: Path, label: str, *, kind: str | None = None) -> str:
    """The URL of a new, empty database of `kind` (default: the suite's backend)."""
    kind = kind or backend()
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'{label}.db'}"
    server = postgres_server_url()
    assert server, "TEST_DATABASE_URL is not set"
    name = f"t_{re.sub(r'[^a-z0-9_]', '_', label.lower())}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def app_config(url: str) -> dict[str, object]:
    return {
        "DATABASE_URL": url,
        "PORTAL_ENV": "test",
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "ATTACHMENT_KEY": "test-attachment-key-not-for-production",
        "ARGON2_PARAMS": CHEAP_ARGON2,
    }


@contextmanager
def served_app(tmp: Path, label: str) -> Iterator[tuple[Flask, str]]:
    """The app over real HTTP on a free loopback port, with its own migrated, demo-seeded
    database of the suite's kind: for what only a real server shows (concurrency, fuzzing)."""
    from portal import create_app, demo
    from portal.cli import upgrade_database
    from portal.extensions import db

    app = create_app(app_config(new_database(tmp, label)))
    upgrade_database(app)
    with app.app_context():
        demo.seed(db.session)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        app.extensions["portal.db"]["engine"].dispose()

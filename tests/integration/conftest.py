"""The app served on a free port over real HTTP, with its own migrated, demo-seeded database
(SQLite file or a PostgreSQL database, as the suite runs): for what only concurrent requests
through a real server show (locks, races, transactions)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.serving import make_server

from portal import create_app, demo
from portal.cli import upgrade_database
from portal.extensions import db
from tests.support import app_config, new_database


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.served)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, str]]:
    url = new_database(tmp_path_factory.mktemp("served"), "integration")
    app = create_app(app_config(url))
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

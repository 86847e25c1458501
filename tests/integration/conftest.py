"""The app served on a free port over real HTTP, with its own migrated, demo-seeded database
(SQLite file or a PostgreSQL database, as the suite runs): for what only concurrent requests
through a real server show (locks, races, transactions)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from tests.support import served_app


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.served)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, str]]:
    with served_app(tmp_path_factory.mktemp("served"), "integration") as found:
        yield found

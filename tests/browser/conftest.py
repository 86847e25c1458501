"""Browser tests: Debian's chromium driven by Playwright against the app served on a free port.

The served app has its own migrated, demo-seeded SQLite database (a real server thread with
its own connections, so the per-test rollback of the other suites does not apply here).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import Page, expect
from werkzeug.serving import make_server

from portal import create_app, demo
from portal.access import Actor
from portal.cli import upgrade_database
from portal.db import set_clock
from portal.extensions import db
from portal.services import accounts
from tests.support import PASSWORD, app_config, new_database

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# A slow or busy CI machine: waits are for an outcome, so a longer ceiling costs nothing when
# the outcome comes and only turns a slow pass into a pass.
expect.set_options(timeout=15_000)
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = str(Path(__file__).parent)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not found at {CHROMIUM} (make test installs it as root)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def served_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    url = new_database(tmp_path_factory.mktemp("served"), "served", kind="sqlite")
    app = create_app(app_config(url))
    upgrade_database(app)
    with app.app_context():
        demo.seed(db.session)
    return app


@pytest.fixture(scope="session")
def live_server(served_app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, served_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture(scope="session")
def base_url(live_server: str) -> str:
    return live_server


_axe = Axe()


def assert_accessible(page: Page, label: str = "") -> None:
    """Run axe-core on the page as it is now: zero WCAG 2.x A/AA violations."""
    results = _axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    assert results.violations_count == 0, f"{label or page.url}\n{results.generate_report()}"


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


# -- A pinned demo for the accessibility checks (tests/browser/a11y.py) ----------------------------
#: The moment the pinned demo is seeded and read at (a Tuesday in clinic hours, UTC): its pages,
#: dates and free slots are the same on every run, so ARIA snapshots can be compared exactly.
PINNED_START = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Pinned:
    """The pinned demo's address, its clock and the ids its pages are reached by."""

    url: str
    clock: Callable[[], datetime]
    ids: dict[str, int]


@pytest.fixture(scope="session")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pinned]:
    """Its own demo, seeded on a pinned clock and untouched by the other browser tests (they
    publish results and send messages to the shared one); only these tests read it."""
    # Seeded at the pinned second exactly (the demo's times, and the cursors made of them, do
    # not depend on how long the migrations took), then the pinned day moves on, as the
    # suite's TEST_CLOCK does.
    set_clock(lambda: PINNED_START)
    path = tmp_path_factory.mktemp("pinned") / "pinned.db"
    app = create_app(app_config(f"sqlite:///{path}"))
    upgrade_database(app)
    with app.app_context():
        demo.seed(db.session)
        _add_empty_patient(app)
    began = time.monotonic()

    def clock() -> datetime:
        return PINNED_START + timedelta(seconds=time.monotonic() - began)

    set_clock(clock)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Pinned(f"http://127.0.0.1:{server.server_port}", clock, _demo_ids(path))
    finally:
        server.shutdown()


@pytest.fixture
def pinned_clock(pinned: Pinned) -> Pinned:
    """The process's clock is the pinned demo's for the test (tests/conftest.py restores it)."""
    set_clock(pinned.clock)
    return pinned


EMPTY_PATIENT = "erin.empty@example.org"


def _add_empty_patient(app: Flask) -> None:
    """A patient with an account and nothing else: the empty states."""
    s = db.session
    admin = Actor.of(accounts.find_user_by_email(s, "admin@example.org"))
    patient = accounts.register_patient(
        s,
        admin,
        medical_record_number="MRN-EMPTY-1",
        display_name="Erin Empty",
        contact_email=EMPTY_PATIENT,
    )
    code = accounts.issue_activation_code(s, admin, patient, portal_url=app.config["PORTAL_URL"])
    accounts.activate_patient(
        s, code=code, email=EMPTY_PATIENT, password=PASSWORD, date_of_birth=None
    )
    s.commit()


def _demo_ids(path: Path) -> dict[str, int]:
    """The records the pages are reached by, read straight from the file (the app's own reads
    are scoped to a signed-in actor)."""
    queries = {
        "alice": "SELECT id FROM patient_profile WHERE user_id ="
        " (SELECT id FROM user_account WHERE email = 'alice@example.org')",
        "chen": "SELECT id FROM user_account WHERE email = 'dr.chen@example.org'",
        # Bob's pages are the ARIA snapshots' (nothing else reads them).
        "bob": "SELECT id FROM patient_profile WHERE user_id ="
        " (SELECT id FROM user_account WHERE email = 'bob@example.org')",
        "bob_trend": "SELECT id FROM lab_result WHERE patient_id = :bob AND test_code = '4548-4'"
        " ORDER BY collected_at DESC LIMIT 1",
        "bob_conversation": "SELECT id FROM conversation WHERE patient_id = :bob"
        " ORDER BY id LIMIT 1",
        # The corrected potassium: two versions.
        "result": "SELECT id FROM lab_result WHERE patient_id = :alice AND current_version > 1"
        " AND shared_version IS NOT NULL ORDER BY id LIMIT 1",
        # The latest haemoglobin A1c: a trend chart with its reference band.
        "trend": "SELECT id FROM lab_result WHERE patient_id = :alice AND test_code = '4548-4'"
        " ORDER BY collected_at DESC LIMIT 1",
        "plan": "SELECT id FROM treatment_plan WHERE patient_id = :alice AND status = 'active'"
        " AND current_version > 1 ORDER BY id LIMIT 1",
        "conversation": "SELECT id FROM conversation WHERE patient_id = :alice ORDER BY id LIMIT 1",
        "appointment": "SELECT id FROM appointment WHERE patient_id = :alice"
        " AND status = 'scheduled' ORDER BY start_at LIMIT 1",
    }
    ids: dict[str, int] = {}
    with sqlite3.connect(path) as conn:
        for name, sql in queries.items():
            row = conn.execute(sql, ids).fetchone()
            assert row, f"the demo has no {name}"
            ids[name] = row[0]
    return ids

"""The sign-in limit holds under a burst of parallel guesses (issue 21, point 6): each attempt
is claimed before its password is checked, so of 30 guesses at once exactly the limit (5)
reach the password check, through the API's token endpoint and the password change alike.

Counted from the audit log: a guess whose password was checked is recorded with the reason
"credentials" (or "current_password"), one answered with the pause with "paused".
"""

from __future__ import annotations

from typing import Any

import requests
from flask import Flask
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditAction, AuditEvent
from tests.support import all_at_once, csrf_of, signed_in

GUESSES = 30
LIMIT = 5  # LOGIN_MAX_FAILURES, the default


def _entries(app: Flask, action: AuditAction, reason: str) -> int:
    with app.app_context():
        found = db.session.scalar(
            select(func.count()).where(
                AuditEvent.action == action, AuditEvent.detail.like(f'%"reason":"{reason}"%')
            )
        )
        db.session.rollback()
        return found or 0


def test_thirty_parallel_guesses_at_the_token_endpoint_check_the_password_five_times(
    served: tuple[Flask, str],
) -> None:
    # Arrange
    app, base = served
    checked_before = _entries(app, AuditAction.SIGN_IN_FAILED, "credentials")

    def guess(n: int) -> Any:
        return lambda: requests.post(
            base + "/api/v1/auth/token",
            json={"email": "carol@example.org", "password": f"wrong guess {n}"},
            timeout=120,
        )

    # Act
    statuses = [r.status_code for r in all_at_once([guess(n) for n in range(GUESSES)])]
    # Assert: five were checked (401), every other one told to wait (429)
    assert statuses.count(401) == LIMIT, statuses
    assert statuses.count(429) == GUESSES - LIMIT
    assert _entries(app, AuditAction.SIGN_IN_FAILED, "credentials") - checked_before == LIMIT


def test_thirty_parallel_guesses_at_the_password_change_check_it_five_times(
    served: tuple[Flask, str],
) -> None:
    # Arrange: one signed-in session (stolen, say), its cookie in 30 clients
    app, base = served
    browser = signed_in(base, "bob@example.org")
    token = csrf_of(browser, base + "/account")
    checked_before = _entries(app, AuditAction.PASSWORD_CHANGE, "current_password")

    def guess(n: int) -> Any:
        client = requests.Session()
        client.cookies.update(browser.cookies)
        return lambda: client.post(
            base + "/account/password",
            data={
                "csrf_token": token,
                "pw-current_password": f"wrong guess {n}",
                "pw-password": "A brand new passphrase 2026",
                "pw-confirm": "A brand new passphrase 2026",
            },
            allow_redirects=False,
            timeout=120,
        )

    # Act
    statuses = [r.status_code for r in all_at_once([guess(n) for n in range(GUESSES)])]
    # Assert: every guess refused, and only five of them checked
    assert set(statuses) == {422}, statuses
    checked = _entries(app, AuditAction.PASSWORD_CHANGE, "current_password") - checked_before
    assert checked == LIMIT

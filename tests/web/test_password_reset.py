"""'Forgot your password?': the same answer for every address, a mailed link that works once
for 30 minutes, every old session ended, and a notice that the password changed."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete
from sqlalchemy.orm import Session

from portal import jobs
from portal.access import unscoped
from portal.auth.views import RESET_SENT
from portal.db import set_clock, utcnow
from portal.models import OutboxMail
from tests.conftest import csrf_token, login
from tests.support import mails_in

ALICE = "alice@example.org"
NEW_PASSWORD = "a long and brand new passphrase"


@pytest.fixture
def mailbox(app: Flask, session: Session) -> Path:
    """The mail folder, emptied of what earlier tests and the demo's own events left."""
    session.execute(unscoped(delete(OutboxMail), "test: an empty outbox"))
    folder = Path(app.config["MAIL_DIR"])
    for path in folder.glob("*.eml"):
        path.unlink()
    return folder


def _mail_to(folder: Path, address: str) -> list[str]:
    jobs.run_once()
    return [m.text for m in mails_in(folder) if m.to == address]


def _ask(client: FlaskClient, email: str) -> tuple[int, str]:
    token = csrf_token(client, "/forgot-password")
    r = client.post("/forgot-password", data={"email": email, "csrf_token": token})
    page = client.get(r.location).get_data(as_text=True) if r.status_code == 303 else ""
    return r.status_code, page


def _set(client: FlaskClient, token: str, password: str = NEW_PASSWORD):  # type: ignore[no-untyped-def]
    csrf = csrf_token(client, f"/reset-password/{token}")
    return client.post(
        f"/reset-password/{token}",
        data={"password": password, "confirm": password, "csrf_token": csrf},
    )


def _link_token(text: str) -> str:
    found = re.search(r"/reset-password/([A-Za-z0-9_-]+)", text)
    assert found, text
    return found.group(1)


@pytest.mark.usefixtures("session")
def test_a_forgotten_password_is_set_again_through_the_mailed_link_once(
    app: Flask, client: FlaskClient, mailbox: Path
) -> None:
    phone = app.test_client()
    login(phone, ALICE)  # a device signed in before
    status, page = _ask(client, "  Alice@Example.ORG ")
    assert status == 303
    assert str(RESET_SENT) in page
    [link_mail] = _mail_to(mailbox, ALICE)
    token = _link_token(link_mail)
    assert client.get(f"/reset-password/{token}").status_code == 200
    assert _set(client, token).status_code == 303
    # Every device was signed out; the old password no longer opens the account
    assert phone.get("/my/").status_code in (302, 303)
    bad = client.post(
        "/login",
        data={"email": ALICE, "password": "Demo-Portal-2026!", "csrf_token": csrf_token(client)},
    )
    assert bad.status_code == 422
    login(app.test_client(), ALICE, NEW_PASSWORD)
    # The link works once
    again = _set(client, token, "another long new passphrase")
    assert again.status_code == 422
    assert "expired or was already used" in again.get_data(as_text=True)
    # And the person is told their password changed
    notices = _mail_to(mailbox, ALICE)
    assert any("Subject: Your patient portal password was changed" in t for t in notices)


@pytest.mark.usefixtures("session")
def test_the_answer_is_the_same_for_an_address_without_an_account(
    app: Flask, client: FlaskClient, mailbox: Path
) -> None:
    real = _ask(client, ALICE)
    unknown = _ask(app.test_client(), "nobody-here@example.org")
    assert real[0] == unknown[0] == 303
    assert str(RESET_SENT) in real[1]
    assert str(RESET_SENT) in unknown[1]
    assert _mail_to(mailbox, "nobody-here@example.org") == []


@pytest.mark.usefixtures("session")
def test_a_link_older_than_30_minutes_is_refused(
    app: Flask, client: FlaskClient, mailbox: Path
) -> None:
    start = utcnow()
    set_clock(lambda: start)
    _ask(client, ALICE)
    [link_mail] = _mail_to(mailbox, ALICE)
    set_clock(lambda: start + timedelta(minutes=31))
    late = _set(app.test_client(), _link_token(link_mail))
    assert late.status_code == 422
    assert "expired or was already used" in late.get_data(as_text=True)


@pytest.mark.usefixtures("session")
def test_nobody_can_fill_a_mailbox_with_links(client: FlaskClient, mailbox: Path) -> None:
    for _ in range(6):
        _ask(client, ALICE)
    assert len(_mail_to(mailbox, ALICE)) == 3


@pytest.mark.usefixtures("session")
def test_a_new_password_ends_a_sign_in_pause_at_once(
    app: Flask, client: FlaskClient, mailbox: Path
) -> None:
    for _ in range(5):
        client.post(
            "/login",
            data={"email": ALICE, "password": "a wrong guess", "csrf_token": csrf_token(client)},
        )
    _ask(client, ALICE)
    [link_mail] = _mail_to(mailbox, ALICE)
    assert _set(client, _link_token(link_mail)).status_code == 303
    login(app.test_client(), ALICE, NEW_PASSWORD)  # not paused any more


@pytest.mark.usefixtures("session")
def test_setting_a_password_ends_the_other_reset_links_waiting(
    client: FlaskClient, mailbox: Path
) -> None:
    # L1 (docs/security.md): two links asked for; the first used ends the second
    _ask(client, ALICE)
    _ask(client, ALICE)
    first, second = (_link_token(m) for m in _mail_to(mailbox, ALICE))
    assert _set(client, first).status_code == 303

    refused = _set(client, second, "yet another long passphrase")

    assert refused.status_code == 422
    assert "expired or was already used" in refused.get_data(as_text=True)

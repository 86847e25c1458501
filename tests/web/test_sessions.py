"""Server-side sessions: signing out ends the session for good, the devices page, own password.

Every test copies cookies the way an attacker with a stolen cookie would: by value, into a
second client that never signed in.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.models import AuditAction, AuditEvent, UserSession
from portal.services import sessions
from tests.conftest import DEMO_EMAILS, csrf_token, login
from tests.support import PASSWORD

NEW_PASSWORD = "a fresh and rather long passphrase"


def _cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("portal_session")
    assert cookie is not None
    return cookie.value


def _with_cookie(app: Flask, value: str) -> FlaskClient:
    other = app.test_client()
    other.set_cookie("portal_session", value)
    return other


def _sign_out(client: FlaskClient, page: str) -> None:
    response = client.post("/logout", data={"csrf_token": csrf_token(client, page)})
    assert response.status_code == 303


@pytest.mark.parametrize(
    ("name", "page"),
    [("bob", "/my/lab-results"), ("dr_chen", "/staff/patients"), ("admin", "/admin/users")],
)
def test_a_cookie_copied_before_sign_out_leads_to_the_sign_in_page(
    app: Flask, client: FlaskClient, name: str, page: str
) -> None:
    # Arrange: sign in, and keep a copy of the cookie
    login(client, DEMO_EMAILS[name])
    copied = _cookie(client)
    assert _with_cookie(app, copied).get(page).status_code == 200
    # Act
    _sign_out(client, page)
    # Assert: the copy is dead too
    response = _with_cookie(app, copied).get(page)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_the_cookie_holds_a_random_secret_and_the_server_only_its_hash(
    client: FlaskClient, session, people
) -> None:
    login(client, DEMO_EMAILS["alice"])
    with client.session_transaction() as cookie_session:
        secret = cookie_session["sid"]
    rows = session.scalars(
        select(UserSession).where(UserSession.user_id == people.user("alice").id)
    ).all()
    assert secret not in {r.token_hash for r in rows}
    assert sessions.token_hash(secret) in {r.token_hash for r in rows}
    assert len(secret) >= 40


def test_the_devices_page_lists_this_and_other_sessions_and_ends_one(
    app: Flask, client: FlaskClient
) -> None:
    # Arrange: alice on two devices
    phone = app.test_client()
    login(phone, DEMO_EMAILS["alice"])
    login(client, DEMO_EMAILS["alice"])
    # Act
    page = client.get("/account", headers={"User-Agent": "Mozilla/5.0 (X11; Linux) Firefox/140.0"})
    # Assert
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Signed-in devices" in text
    assert text.count(">Sign out this device</button>") == 2
    assert "(this device)" in text
    # Act: sign the other device out from here
    ids = [int(i) for i in re.findall(r"/account/devices/(\d+)/sign-out", text)]
    with client.session_transaction() as s:
        mine = sessions.token_hash(s["sid"])
    other_id = next(i for i in ids if not _is_mine(app, i, mine))
    ended = client.post(
        f"/account/devices/{other_id}/sign-out", data={"csrf_token": csrf_token(client, "/my/")}
    )
    # Assert
    assert ended.status_code == 303
    assert phone.get("/my/").status_code == 302
    assert client.get("/my/").status_code == 200


def _is_mine(app: Flask, session_id: int, token_hash: str) -> bool:
    from portal.extensions import db

    with app.app_context():
        row = db.session.get(UserSession, session_id)
        return row is not None and row.token_hash == token_hash


def test_sign_out_everywhere_else_keeps_only_this_device(app: Flask, client: FlaskClient) -> None:
    others = [app.test_client() for _ in range(2)]
    for other in others:
        login(other, DEMO_EMAILS["dr_chen"])
    login(client, DEMO_EMAILS["dr_chen"])

    response = client.post(
        "/account/devices/sign-out-others",
        data={"csrf_token": csrf_token(client, "/staff/patients")},
    )

    assert response.status_code == 303
    assert all(o.get("/staff/patients").status_code == 302 for o in others)
    assert client.get("/staff/patients").status_code == 200


def test_someone_elses_session_cannot_be_ended_from_my_devices_page(
    app: Flask, client: FlaskClient, session, people
) -> None:
    bob = app.test_client()
    login(bob, DEMO_EMAILS["bob"])
    bobs = session.scalars(
        select(UserSession.id).where(
            UserSession.user_id == people.user("bob").id, UserSession.revoked_at.is_(None)
        )
    ).all()
    login(client, DEMO_EMAILS["alice"])

    for session_id in bobs:
        client.post(
            f"/account/devices/{session_id}/sign-out",
            data={"csrf_token": csrf_token(client, "/my/")},
        )

    assert bob.get("/my/").status_code == 200


@pytest.mark.parametrize(("name", "home"), [("dr_chen", "/staff/patients"), ("admin", "/")])
def test_staff_and_admins_change_their_own_password(
    app: Flask, client: FlaskClient, name: str, home: str
) -> None:
    # Arrange: a second device of the same person
    other = app.test_client()
    login(other, DEMO_EMAILS[name])
    login(client, DEMO_EMAILS[name])
    token = csrf_token(client, "/account")
    form = {"pw-password": NEW_PASSWORD, "pw-confirm": NEW_PASSWORD, "csrf_token": token}
    # Act: a wrong current password first, then the right one
    wrong = client.post("/account/password", data={**form, "pw-current_password": "not it"})
    right = client.post("/account/password", data={**form, "pw-current_password": PASSWORD})
    # Assert
    assert wrong.status_code == 422
    assert "That is not your current password." in wrong.get_data(as_text=True)
    assert right.status_code == 303
    assert client.get("/account").status_code == 200  # this device stays signed in
    assert other.get("/account").status_code == 302  # every other one is signed out
    _sign_out(client, "/account")
    login(client, DEMO_EMAILS[name], NEW_PASSWORD)


def test_the_account_pages_need_a_signed_in_user(client: FlaskClient) -> None:
    response = client.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_signing_out_is_recorded_with_the_way_of_signing_in(
    client: FlaskClient, session, people
) -> None:
    login(client, DEMO_EMAILS["bob"])
    _sign_out(client, "/my/")
    entry = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.actor_id == people.user("bob").id)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).one()
    assert entry.action is AuditAction.SIGN_OUT
    assert '"via":"session"' in entry.detail

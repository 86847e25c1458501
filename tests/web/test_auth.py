"""Signing in and out: generic failures, lockout, CSRF, revocable sessions, timeouts, passwords."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.db import set_clock, utcnow
from portal.models import AuditAction, AuditEvent, User
from portal.services import accounts
from portal.services.credentials import hash_password, password_problems, verify_password
from tests.conftest import csrf_token, login, post
from tests.support import PASSWORD, sign_in_limits

FAILED = "That email and password do not match an active account."


def _sign_in(client, email: str, password: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_token(client)}
    )


def _error_text(response) -> str:  # type: ignore[no-untyped-def]
    found = re.search(r'class="field-error"[^>]*>(.*?)</p>', response.get_data(as_text=True), re.S)
    return found.group(1) if found else ""


def test_login_page_has_the_contract_fields(client) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert '<label for="email">Email</label>' in page
    assert '<label for="password">Password</label>' in page
    assert ">Sign in</button>" in page


@pytest.mark.parametrize(
    ("email", "password"),
    [("alice@example.org", "wrong password here"), ("nobody@example.org", PASSWORD)],
    ids=["wrong-password", "unknown-email"],
)
def test_a_failed_sign_in_gives_the_same_message_whoever_asks(client, email, password) -> None:
    response = _sign_in(client, email, password)
    assert response.status_code == 422
    assert FAILED in response.get_data(as_text=True)


def test_sign_in_is_case_insensitive_on_email_and_lands_by_role(client) -> None:
    assert _sign_in(client, "ALICE@example.org", PASSWORD).headers["Location"] == "/my/"
    client.post("/logout", data={"csrf_token": csrf_token(client, "/my/")})
    assert _sign_in(client, "dr.chen@example.org", PASSWORD).headers["Location"] == (
        "/staff/patients"
    )
    client.post("/logout", data={"csrf_token": csrf_token(client, "/staff/patients")})
    landing = _sign_in(client, "admin@example.org", PASSWORD).headers["Location"]
    assert landing == "/admin/patients"
    assert client.get(landing).status_code == 200


def test_sign_in_records_audit_entries_for_success_and_failure(client, session) -> None:
    _sign_in(client, "alice@example.org", "wrong password here")
    login(client, "alice@example.org")
    actions = session.scalars(
        select(AuditEvent.action).order_by(AuditEvent.id.desc()).limit(2)
    ).all()
    assert actions == [AuditAction.SIGN_IN, AuditAction.SIGN_IN_FAILED]


def test_repeated_failures_pause_sign_in_even_with_the_right_password(client) -> None:
    for _ in range(5):
        _sign_in(client, "bob@example.org", "wrong password here")
    response = _sign_in(client, "bob@example.org", PASSWORD)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    assert "Too many attempts to sign in" in response.get_data(as_text=True)


def test_a_pause_reads_the_same_for_an_address_without_an_account(client) -> None:
    answers = []
    for email in ("bob@example.org", "nobody-here@example.org"):
        for _ in range(5):
            _sign_in(client, email, "wrong password here")
        paused = _sign_in(client, email, "wrong password here")
        answers.append((paused.status_code, paused.headers.get("Retry-After"), _error_text(paused)))
    assert answers[0] == answers[1]
    assert answers[0][0] == 429


def test_the_pause_ends_after_its_time(client) -> None:
    for _ in range(5):
        _sign_in(client, "bob@example.org", "wrong password here")
    later = utcnow() + timedelta(minutes=2)
    set_clock(lambda: later)
    assert _sign_in(client, "bob@example.org", PASSWORD).status_code == 303


def test_a_post_without_csrf_token_is_refused(client) -> None:
    response = client.post("/login", data={"email": "alice@example.org", "password": PASSWORD})
    assert response.status_code == 400
    login(client, "alice@example.org")
    assert client.post("/logout").status_code == 400
    assert client.get("/my/").status_code == 200  # still signed in


def test_sign_out_ends_the_session(client) -> None:
    login(client, "alice@example.org")
    response = post(client, "/logout")
    assert response.status_code == 303
    assert client.get("/my/").status_code == 302


def test_a_fresh_session_is_issued_on_sign_in(client) -> None:
    client.get("/login")
    with client.session_transaction() as s:
        s["planted"] = "by an attacker"
    login(client, "alice@example.org")
    with client.session_transaction() as s:
        assert "planted" not in s


def test_deactivation_ends_sessions_at_once(client, session, people) -> None:
    login(client, "alice@example.org")
    accounts.set_active(session, people.actor("admin"), people.user("alice"), active=False)
    session.commit()
    assert client.get("/my/").status_code == 302
    assert _sign_in(client, "alice@example.org", PASSWORD).status_code == 422


def test_a_password_change_ends_other_sessions(app, client, session, people) -> None:
    other = app.test_client()
    login(client, "alice@example.org")
    login(other, "alice@example.org")
    accounts.change_password(
        session,
        people.actor("alice"),
        current_password=PASSWORD,
        new_password="a brand new passphrase",
        limits=sign_in_limits(),
    )
    session.commit()
    assert other.get("/my/").status_code == 302
    assert client.get("/my/").status_code == 302  # no session was named as the one to keep


def test_idle_sessions_expire_after_30_minutes(client) -> None:
    login(client, "alice@example.org")
    later = utcnow() + timedelta(minutes=31)
    set_clock(lambda: later)
    response = client.get("/my/")
    assert response.status_code == 302
    follow = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "signed out after a period of inactivity" in follow


def test_sessions_end_after_12_hours_however_active(client) -> None:
    login(client, "alice@example.org")
    start = utcnow()
    for minutes in range(20, 12 * 60, 20):
        moment = start + timedelta(minutes=minutes)
        set_clock(lambda m=moment: m)
        assert client.get("/my/").status_code == 200
    end = start + timedelta(hours=12, minutes=1)
    set_clock(lambda: end)
    assert client.get("/my/").status_code == 302


def test_next_parameter_cannot_redirect_off_site(client) -> None:
    response = client.post(
        "/login?next=//evil.example/phish",
        data={"email": "alice@example.org", "password": PASSWORD, "csrf_token": csrf_token(client)},
    )
    assert response.headers["Location"] == "/my/"


@pytest.mark.parametrize(
    "weak", ["short1!", "password1234", "Password123!", "aaaaaaaaaaaaaaa", "qwertyuiop123"]
)
def test_weak_passwords_are_refused(weak: str) -> None:
    assert password_problems(weak)


def test_a_good_password_is_accepted() -> None:
    assert password_problems("correct staple horse battery morning") == []


def test_hashes_are_argon2id_and_rehashed_when_parameters_change(app) -> None:
    with app.app_context():
        stored = hash_password("a long enough passphrase")
        assert stored.startswith("$argon2id$")
        app.config["ARGON2_PARAMS"] = {"time_cost": 2, "memory_cost": 16, "parallelism": 1}
        try:
            ok, new_hash = verify_password(stored, "a long enough passphrase")
        finally:
            app.config["ARGON2_PARAMS"] = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
        assert ok
        assert new_hash
        assert new_hash != stored


def test_a_patient_activates_with_a_code_from_staff(client, session, people) -> None:
    admin = people.actor("admin")
    patient = accounts.register_patient(
        session,
        admin,
        medical_record_number="MRN-200001",
        display_name="Erin Test",
        contact_email="erin.home@example.org",
    )
    code = accounts.issue_activation_code(session, admin, patient, portal_url="http://portal.test")
    session.commit()
    form = {
        "code": code.lower(),
        "email": "Erin@Example.org",
        "password": "my own long passphrase",
        "confirm": "my own long passphrase",
        "csrf_token": csrf_token(client, "/activate"),
    }
    assert client.post("/activate", data=form).status_code == 303
    login(client, "erin@example.org", "my own long passphrase")
    # the code is single-use
    form["csrf_token"] = csrf_token(client, "/activate")
    again = client.post("/activate", data={**form, "email": "other@example.org"})
    assert again.status_code in (302, 422)


def test_activation_refuses_a_weak_password(client, session, people) -> None:
    admin = people.actor("admin")
    patient = accounts.register_patient(
        session,
        admin,
        medical_record_number="MRN-200002",
        display_name="Finn Test",
        contact_email="finn.home@example.org",
    )
    code = accounts.issue_activation_code(session, admin, patient, portal_url="http://portal.test")
    session.commit()
    response = client.post(
        "/activate",
        data={
            "code": code,
            "email": "finn@example.org",
            "password": "password1234",
            "confirm": "password1234",
            "csrf_token": csrf_token(client, "/activate"),
        },
    )
    assert response.status_code == 422
    assert "too common" in response.get_data(as_text=True)
    assert session.scalar(select(User).where(User.email == "finn@example.org")) is None


def test_a_staff_invitation_sets_the_password_once(client, session, people) -> None:
    from portal.models import Role

    user, token = accounts.create_staff(
        session,
        people.actor("admin"),
        email="dr.new@example.org",
        role=Role.PROVIDER,
        display_name="Dr New",
    )
    session.commit()
    assert token
    path = f"/invitation/{token}"
    data = {"password": "a long staff passphrase", "confirm": "a long staff passphrase"}
    response = client.post(path, data={**data, "csrf_token": csrf_token(client, path)})
    assert response.status_code == 303
    login(client, "dr.new@example.org", "a long staff passphrase")

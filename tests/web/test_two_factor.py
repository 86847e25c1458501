"""Two-step sign-in (TOTP, RFC 6238): enrolment confirmed by a first code, a code at sign-in,
codes refused when wrong or replayed, single-use recovery codes, staff made to enrol when the
clinic requires it, and every change audited, mailed and ending other sessions."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.db import set_clock
from portal.models import AuditEvent, OutboxMail, RecoveryCode, User
from portal.services import accounts, two_factor
from tests.conftest import Demo, csrf_token, login, post

ALICE = "alice@example.org"
CHEN = "dr.chen@example.org"
MOMENT = datetime(2026, 12, 2, 9, 0, 10, tzinfo=UTC)  # 10 s into a 30 s step


@pytest.fixture
def clock() -> list[datetime]:
    """A clock the test moves by hand: codes depend on the time step."""
    now = [MOMENT]
    set_clock(lambda: now[0])
    return now


@pytest.fixture
def required(app: Flask) -> Iterator[None]:
    app.config["TWO_FACTOR_REQUIRED"] = True
    yield
    app.config["TWO_FACTOR_REQUIRED"] = False


def _enrol(client: FlaskClient, clock: list[datetime]) -> tuple[str, list[str]]:
    """Set up two-step sign-in on the signed-in account: its secret and recovery codes."""
    assert post(client, "/account/two-factor/start").status_code == 303
    page = client.get("/account/two-factor").get_data(as_text=True)
    assert "<svg" in page
    assert 'role="img"' in page
    found = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page)
    assert found, page
    secret = found.group(1).replace(" ", "")
    r = post(
        client,
        "/account/two-factor/confirm",
        {"confirm-code": two_factor.current_code(secret, clock[0])},
    )
    assert r.status_code == 200, r.get_data(as_text=True)[:400]
    codes = re.findall(r"<code>([A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4})</code>", r.text)
    assert len(codes) == 10
    clock[0] += timedelta(seconds=30)  # the confirming code's step is used up
    return secret, codes


def _password(client: FlaskClient, email: str) -> object:
    return client.post(
        "/login",
        data={"email": email, "password": "Demo-Portal-2026!", "csrf_token": csrf_token(client)},
    )


def _code(client: FlaskClient, code: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/login/code")
    return client.post("/login/code", data={"code": code, "csrf_token": token})


def _entries(session: Session, user_id: int, entity: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            unscoped(
                select(AuditEvent)
                .where(AuditEvent.entity_type == entity, AuditEvent.entity_id == str(user_id))
                .order_by(AuditEvent.id),
                "test: the account's entries",
            )
        )
    )


@pytest.mark.usefixtures("session")
def test_enrolment_needs_a_first_code_and_then_sign_in_needs_one(
    app: Flask, client: FlaskClient, session: Session, clock: list[datetime]
) -> None:
    phone = app.test_client()
    login(phone, ALICE)
    login(client, ALICE)
    assert post(client, "/account/two-factor/start").status_code == 303
    # Nothing is on until a first code confirms the app has the secret
    wrong = post(client, "/account/two-factor/confirm", {"confirm-code": "000000"})
    assert wrong.status_code == 422
    assert two_factor.WRONG_CODE in wrong.text
    alice = session.scalar(select(User).where(User.email == ALICE))
    assert alice is not None
    session.refresh(alice)
    assert alice.totp_enabled_at is None
    assert alice.patient is not None
    alice.patient.preferred_language = "es"  # the notice of the change is written in hers
    session.flush()
    secret, _codes = _enrol(client, clock)
    # Turning it on ended the other device's session, and was recorded
    assert phone.get("/my/").status_code in (302, 303)
    # Each key issued (started twice here) and the turning on were recorded
    assert [e.action for e in _entries(session, alice.id, "two_factor")] == [
        "create",
        "create",
        "activate",
    ]
    [notice] = session.scalars(
        select(OutboxMail).where(OutboxMail.user_id == alice.id, OutboxMail.kind == "two_factor")
    )
    assert notice.to_address == ALICE
    assert notice.subject.startswith("Se activó el inicio de sesión en dos pasos")

    fresh = app.test_client()
    r = _password(fresh, ALICE)
    assert r.status_code == 303
    assert r.location.endswith("/login/code")
    assert fresh.get("/my/").status_code in (302, 303)  # not signed in on the password alone
    assert _code(fresh, "123456").status_code == 422
    r = _code(fresh, two_factor.current_code(secret, clock[0]))
    assert r.status_code == 303
    assert fresh.get("/my/").status_code == 200


@pytest.mark.usefixtures("session")
def test_a_code_is_refused_when_replayed_within_its_window(
    app: Flask, client: FlaskClient, clock: list[datetime]
) -> None:
    login(client, ALICE)
    secret, _codes = _enrol(client, clock)
    code = two_factor.current_code(secret, clock[0])
    first, second = app.test_client(), app.test_client()
    _password(first, ALICE)
    assert _code(first, code).status_code == 303
    clock[0] += timedelta(seconds=5)  # same step: the code is still "current"
    _password(second, ALICE)
    replay = _code(second, code)
    assert replay.status_code == 422
    assert two_factor.WRONG_CODE in replay.text
    # The previous step's code (a phone a little behind) is no good after a later one either
    late = two_factor.current_code(secret, clock[0] - timedelta(seconds=30))
    assert _code(second, late).status_code == 422
    clock[0] += timedelta(seconds=30)
    assert _code(second, two_factor.current_code(secret, clock[0])).status_code == 303


@pytest.mark.usefixtures("session")
def test_a_recovery_code_signs_in_once_and_ends_other_sessions(
    app: Flask, client: FlaskClient, session: Session, clock: list[datetime]
) -> None:
    login(client, ALICE)
    _secret, codes = _enrol(client, clock)
    lost_phone = app.test_client()
    _password(lost_phone, ALICE)
    assert _code(lost_phone, codes[3].lower().replace("-", " ")).status_code == 303
    assert client.get("/my/").status_code in (302, 303)  # the other session ended
    again = app.test_client()
    _password(again, ALICE)
    assert _code(again, codes[3]).status_code == 422
    alice = session.scalar(select(User).where(User.email == ALICE))
    assert alice is not None
    [*_, used] = [
        e
        for e in _entries(session, alice.id, "user_account")
        if e.action == "sign_in" and e.outcome == "success"
    ]
    assert json.loads(used.detail or "{}") == {"second_factor": "recovery_code"}


@pytest.mark.usefixtures("session")
def test_wrong_codes_count_toward_the_sign_in_pause(
    app: Flask, client: FlaskClient, clock: list[datetime]
) -> None:
    login(client, ALICE)
    _enrol(client, clock)
    guesser = app.test_client()
    _password(guesser, ALICE)
    statuses = [_code(guesser, f"{n:06d}").status_code for n in range(7)]
    assert statuses[:5] == [422] * 5
    assert statuses[-1] == 429
    paused = _code(guesser, "000000")
    assert int(paused.headers["Retry-After"]) > 0


@pytest.mark.usefixtures("session")
def test_new_recovery_codes_replace_the_old_and_turning_off_needs_a_code(
    app: Flask, client: FlaskClient, session: Session, clock: list[datetime]
) -> None:
    login(client, ALICE)
    secret, old = _enrol(client, clock)
    r = post(
        client,
        "/account/two-factor/recovery-codes",
        {"renew-code": two_factor.current_code(secret, clock[0])},
    )
    assert r.status_code == 200
    assert "the old ones no longer work" in r.text
    clock[0] += timedelta(seconds=30)
    assert post(client, "/account/two-factor/off", {"off-code": old[0]}).status_code == 422
    r = post(
        client, "/account/two-factor/off", {"off-code": two_factor.current_code(secret, clock[0])}
    )
    assert r.status_code == 303
    alice = session.scalar(select(User).where(User.email == ALICE))
    assert alice is not None
    actions = [(e.action, e.outcome) for e in _entries(session, alice.id, "two_factor")]
    assert actions == [
        ("create", "success"),
        ("activate", "success"),
        ("update", "success"),
        ("update", "denied"),
        ("deactivate", "success"),
    ]
    login(app.test_client(), ALICE)  # the password alone again


@pytest.mark.usefixtures("session", "required")
def test_providers_must_enrol_before_anything_else_when_the_clinic_requires_it(
    app: Flask, client: FlaskClient, clock: list[datetime]
) -> None:
    login(client, CHEN)
    r = client.get("/staff/patients")
    assert r.status_code == 303
    assert r.location.endswith("/account/two-factor")
    api = client.get("/api/v1/me")
    assert api.status_code == 403
    token = app.test_client().post(
        "/api/v1/auth/token", json={"email": CHEN, "password": "Demo-Portal-2026!"}
    )
    assert token.status_code == 403
    secret, _codes = _enrol(client, clock)
    assert client.get("/staff/patients").status_code == 200
    # Kept on while required
    r = post(
        client, "/account/two-factor/off", {"off-code": two_factor.current_code(secret, clock[0])}
    )
    assert r.status_code == 422
    assert "requires two-step sign-in" in r.text
    # Patients are offered it, not made to
    alice = app.test_client()
    login(alice, ALICE)
    assert alice.get("/my/").status_code == 200


@pytest.mark.usefixtures("session")
def test_an_api_token_needs_the_same_factors(
    app: Flask, client: FlaskClient, clock: list[datetime]
) -> None:
    login(client, ALICE)
    secret, _codes = _enrol(client, clock)
    body = {"email": ALICE, "password": "Demo-Portal-2026!"}
    api = app.test_client()
    missing = api.post("/api/v1/auth/token", json=body)
    assert missing.status_code == 401
    assert "two-step" in missing.json["detail"]
    assert api.post("/api/v1/auth/token", json={**body, "code": "000000"}).status_code == 401
    code = two_factor.current_code(secret, clock[0])
    assert api.post("/api/v1/auth/token", json={**body, "code": code}).status_code == 201


@pytest.mark.usefixtures("session")
def test_a_secret_moved_to_another_account_opens_nothing(
    app: Flask, client: FlaskClient, session: Session, clock: list[datetime]
) -> None:
    login(client, ALICE)
    secret, _codes = _enrol(client, clock)
    alice = session.scalar(select(User).where(User.email == ALICE))
    bob = session.scalar(select(User).where(User.email == "bob@example.org"))
    assert alice is not None
    assert bob is not None
    sealed = session.scalar(select(User.totp_secret).where(User.id == alice.id))
    session.execute(
        update(User)
        .where(User.id == bob.id)
        .values(totp_secret=sealed, totp_enabled_at=clock[0], totp_last_step=None)
    )
    session.commit()
    with pytest.raises(two_factor.TwoFactorError):
        two_factor._secret_of(session, bob.id)


@pytest.mark.usefixtures("session")
def test_the_clinic_resetting_a_patients_access_clears_two_step_sign_in(
    app: Flask, client: FlaskClient, session: Session, clock: list[datetime], people: Demo
) -> None:
    # A patient who lost phone and recovery codes along with their mailbox
    login(client, ALICE)
    _enrol(client, clock)
    alice = people.user("alice")
    session.refresh(alice)  # enrolled through the pages since it was loaded
    assert alice.patient is not None
    assert alice.totp_enabled_at is not None
    accounts.reset_patient_access(
        session, people.actor("admin"), alice.patient, portal_url="http://portal.test"
    )
    session.commit()
    session.refresh(alice)
    assert alice.totp_enabled_at is None
    assert alice.totp_secret is None
    unused = select(RecoveryCode).where(
        RecoveryCode.user_id == alice.id, RecoveryCode.used_at.is_(None)
    )
    assert session.scalars(unused).all() == []


@pytest.mark.usefixtures("session")
def test_the_right_password_again_does_not_wipe_the_wrong_codes(
    app: Flask, client: FlaskClient, clock: list[datetime]
) -> None:
    # The password's claim is taken back when it is right, but the account's failures are
    # kept until the code is right too: knowing the password buys no fresh code guesses.
    login(client, ALICE)
    _enrol(client, clock)
    codes = []
    for n in range(5):
        guesser = app.test_client()
        assert _password(guesser, ALICE).status_code == 303  # on to the code
        codes.append(_code(guesser, f"{n:06d}").status_code)
    assert codes == [422] * 5
    # The password, right as ever, is now answered with the pause
    assert _password(app.test_client(), ALICE).status_code == 429

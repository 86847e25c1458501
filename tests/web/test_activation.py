"""Activating a patient account: a refused attempt is recorded and counts toward the same
pause as signing in (issue 11, point 7); a patient whose access was reset activates again."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from portal.models import AuditAction, AuditEvent, AuditOutcome, User
from portal.services import accounts
from tests.conftest import Demo, csrf_token
from tests.support import sign_in_limits

PASSPHRASE = "my own long passphrase"


def _activate(client: FlaskClient, code: str, email: str = "erin@example.org"):  # type: ignore[no-untyped-def]
    return client.post(
        "/activate",
        data={
            "code": code,
            "email": email,
            "password": PASSPHRASE,
            "confirm": PASSPHRASE,
            "csrf_token": csrf_token(client, "/activate"),
        },
    )


def _new_patient_code(session: Session, people: Demo, mrn: str = "MRN-200101") -> str:
    admin = people.actor("admin")
    patient = accounts.register_patient(
        session,
        admin,
        medical_record_number=mrn,
        display_name="Erin Test",
        contact_email="erin.home@example.org",
    )
    code = accounts.issue_activation_code(session, admin, patient, portal_url="http://portal.test")
    session.commit()
    return code


def test_a_wrong_code_is_recorded_as_denied(client: FlaskClient, session: Session) -> None:
    response = _activate(client, "AAAA-BBBB-CCCC-DDDD")

    assert response.status_code == 422
    assert "This activation code is not valid" in response.get_data(as_text=True)
    entry = session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    assert entry is not None
    assert (entry.action, entry.outcome) == (AuditAction.ACTIVATE, AuditOutcome.DENIED)


def test_guessing_codes_pauses_activation_like_signing_in(
    app: Flask, client: FlaskClient, session: Session, people: Demo
) -> None:
    # Arrange
    code = _new_patient_code(session, people)
    # Act: as many wrong codes as one address may try
    for _ in range(sign_in_limits().per_account):
        assert _activate(client, "AAAA-BBBB-CCCC-DDDD").status_code == 422
    paused = _activate(client, code)
    # Assert: even the right code now waits, and nothing was created
    assert paused.status_code == 422
    assert "Too many attempts" in paused.get_data(as_text=True)
    assert session.scalar(select(User).where(User.email == "erin@example.org")) is None
    # From another address, with another email, the right code works
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.9"
    assert _activate(other, code, "erin.other@example.org").status_code == 303


def test_a_code_claimed_while_it_is_being_used_is_refused(
    app: Flask, session: Session, people: Demo
) -> None:
    # Arrange: another request claims the code between this one's read and its write
    code = _new_patient_code(session, people, "MRN-200102")
    engine = app.extensions["portal.db"]["engine"]
    raced: list[str] = []

    def other_request_first(_conn, cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if not raced and statement.lstrip().upper().startswith("UPDATE ACTIVATION_CODE"):
            raced.append(statement)
            cursor.execute("UPDATE activation_code SET used_at = expires_at WHERE used_at IS NULL")

    event.listen(engine, "before_cursor_execute", other_request_first)
    # Act and assert: only one of the two makes an account
    try:
        with pytest.raises(accounts.AccountError):
            accounts.activate_patient(
                session,
                code=code,
                email="erin.race@example.org",
                password=PASSPHRASE,
                date_of_birth=None,
            )
    finally:
        event.remove(engine, "before_cursor_execute", other_request_first)
    assert raced
    assert session.scalar(select(User).where(User.email == "erin.race@example.org")) is None

"""Application logs carry request ids, never names, MRNs, email addresses, values or messages."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.conftest import DEMO_EMAILS, login, post
from tests.web.audit_support import a_conversation_of, a_result_of

MESSAGE_BODY = "Quokka-lantern 7731: my left knee still hurts after the stairs"
FAILING_BODY = "Marmalade-harbour 5519: this one makes the database fail"
RESULT_VALUE = "987.654"


@pytest.fixture
def every_log_record(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Everything the loggers say with the root logger at DEBUG (set before the database
    connection opens, so any statement logging that DEBUG switches on is caught too)."""
    caplog.set_level(logging.DEBUG)
    for name in ("werkzeug", "portal", "flask.app"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def _refuse_inserts_of(session: Session, body: str) -> None:
    """Make the database itself fail on one message body, inside the test's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "CREATE FUNCTION pg_temp.refuse_probe() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN IF NEW.body = '{body}' THEN RAISE EXCEPTION 'refused for the test'; "
                "END IF; RETURN NEW; END $$"
            )
        )
        session.execute(
            text(
                "CREATE TRIGGER refuse_probe BEFORE INSERT ON message "
                "FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse_probe()"
            )
        )
    else:
        session.execute(
            text(
                "CREATE TEMP TRIGGER refuse_probe BEFORE INSERT ON message "
                f"WHEN NEW.body = '{body}' BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"
            )
        )


def test_a_whole_journey_logs_no_personal_or_clinical_data(
    every_log_record: pytest.LogCaptureFixture,
    app: Flask,
    client,
    session: Session,
    people,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Arrange
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    alice = people.user("alice")
    secrets = {
        "alice's name": alice.patient.display_name,
        "alice's MRN": alice.patient.medical_record_number,
        "alice's email": DEMO_EMAILS["alice"],
        "dr.chen's email": DEMO_EMAILS["dr_chen"],
        "the message body": MESSAGE_BODY,
        "the failing message body": FAILING_BODY,
        "the result value": RESULT_VALUE,
    }
    conversation = a_conversation_of(session, people, "alice")
    result = a_result_of(session, people, "alice")
    _refuse_inserts_of(session, FAILING_BODY)
    session.commit()

    # Act: alice fails to sign in once, then reads her results and writes to dr.chen.
    failed = client.post(
        "/login", data={"email": DEMO_EMAILS["alice"], "password": "wrong"}
    )  # no CSRF token either
    login(client, DEMO_EMAILS["alice"])
    assert client.get("/my/lab-results").status_code == 200
    assert client.get(f"/my/lab-results/{result.id}").status_code == 200
    assert client.get(f"/my/lab-results/{result.id}", headers={"HX-Request": "true"}).status_code
    sent = post(
        client,
        f"/my/messages/{conversation.id}/reply",
        {"body": MESSAGE_BODY, "idempotency_key": "log-journey-1"},
    )
    broken = post(
        client,
        f"/my/messages/{conversation.id}/reply",
        {"body": FAILING_BODY, "idempotency_key": "log-journey-2"},
    )
    missing = client.get("/my/lab-results/999999999")
    client.post("/logout", data={"csrf_token": "forged"})
    client.delete_cookie("portal_session")

    # ... and dr.chen publishes a result for her and searches for her by name.
    login(client, DEMO_EMAILS["dr_chen"])
    published = post(
        client,
        f"/staff/patients/{alice.patient.id}/results/new",
        {
            "test_code": "2345-7",
            "test_name": "Glucose",
            "result_value": RESULT_VALUE,
            "units": "mmol/L",
            "reference_range": "3.9-5.5",
            "visibility": "shared",
        },
    )
    client.get("/staff/patients", query_string={"q": alice.patient.display_name})

    # Assert: the journey happened, including its error paths ...
    assert failed.status_code == 400
    assert sent.status_code == 303
    assert broken.status_code == 500
    assert missing.status_code == 404
    assert published.status_code == 303
    # ... the failure was logged (with its traceback) ...
    assert any(r.levelno >= logging.ERROR and r.exc_info for r in every_log_record.records)
    # ... and nothing logged names a person or says what their records contain.
    logged = every_log_record.text
    leaks = {name: value for name, value in secrets.items() if value in logged}
    assert leaks == {}, f"logged: {sorted(leaks)}"

"""Publishing, correcting and releasing lab results from the provider's side, as the patient
then sees them (the patient's pages, their htmx fragments and their notifications)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.access import Actor, RoleScope, reader, unscoped
from portal.db import set_clock, utcnow
from portal.demo import MINIMAL_PDF
from portal.models import (
    Attachment,
    AuditAction,
    AuditEvent,
    LabResult,
    Notification,
    ReleaseMode,
    ReleasePreference,
    ResultStatus,
)
from portal.services import labs, settings
from tests.conftest import SUITE_CLOCK, Demo, login, post


@pytest.fixture
def alice_client(app: Flask, connection: object) -> FlaskClient:
    """A second browser, signed in as alice (the `client` fixture is the provider's)."""
    other = app.test_client()
    login(other, "alice@example.org")
    return other


def _alice(people: Demo) -> int:
    return people.user("alice").patient.id


def _publish(client: FlaskClient, patient_id: int, **fields: str):  # type: ignore[no-untyped-def]
    data = {"test_code": "718-7", "test_name": "Hemoglobin", "result_value": "19.0", **fields}
    data.setdefault("action", "final")
    data.setdefault("visibility", "shared")
    return post(client, f"/staff/patients/{patient_id}/results/new", data)


def _result(session: Session, result_id: int) -> LabResult:
    session.expire_all()
    row = session.scalar(unscoped(select(LabResult).where(LabResult.id == result_id), "test"))
    assert row is not None
    return row


def _result_id(response) -> int:  # type: ignore[no-untyped-def]
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def _notifications(session: Session, recipient: Actor) -> list[str]:
    session.expire_all()
    stmt = RoleScope(recipient.role).own(select(Notification.text).order_by(Notification.id))
    return list(session.scalars(stmt, reader(recipient)))


def test_choosing_a_test_prefills_its_units_and_range_without_javascript(as_user, people) -> None:
    client = as_user("dr_chen")
    page = client.get(f"/staff/patients/{_alice(people)}/results/new?test_code=2823-3")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'value="Potassium"' in html
    assert 'value="mmol/L"' in html
    assert 'value="3.5-5.1"' in html
    assert "Released to the patient as soon as it is published." in html


def test_the_test_choice_answers_htmx_with_only_the_result_form(as_user, people) -> None:
    client = as_user("dr_chen")
    page = client.get(
        f"/staff/patients/{_alice(people)}/results/new?test_code=2823-3",
        headers={"HX-Request": "true"},
    )
    html = page.get_data(as_text=True)
    assert 'value="mmol/L"' in html
    assert "<html" not in html


def test_publishing_a_final_result_fills_catalog_defaults_flags_it_and_notifies_the_patient(
    session: Session, as_user, people: Demo, alice_client: FlaskClient
) -> None:
    # Arrange
    client = as_user("dr_chen")
    # Act
    result_id = _result_id(_publish(client, _alice(people), units="", reference_range=""))
    # Assert
    version = labs.versions_of(session, people.actor("dr_chen"), _result(session, result_id))[0]
    assert (version.units, version.reference_range) == ("g/dL", "12.0-17.5")
    assert version.status is ResultStatus.FINAL
    assert version.released_at is not None
    assert "High" in client.get(f"/staff/results/{result_id}").get_data(as_text=True)
    assert "New lab result: Hemoglobin" in _notifications(session, people.actor("alice"))
    assert "19.0" in alice_client.get(f"/my/lab-results/{result_id}").get_data(as_text=True)
    published = session.scalar(
        select(AuditEvent).where(
            AuditEvent.entity_type == "lab_result",
            AuditEvent.entity_id == str(result_id),
            AuditEvent.action == AuditAction.PUBLISH,
        )
    )
    assert published is not None


def test_a_preliminary_result_stays_with_the_care_team(
    session: Session, as_user, people: Demo, alice_client: FlaskClient
) -> None:
    client = as_user("dr_chen")
    before = _notifications(session, people.actor("alice"))
    result_id = _result_id(
        _publish(client, _alice(people), action="preliminary", result_value="13.3")
    )
    assert _result(session, result_id).shared_version is None
    assert _notifications(session, people.actor("alice")) == before
    assert alice_client.get(f"/my/lab-results/{result_id}").status_code == 404
    assert "Preliminary" in client.get(f"/staff/results/{result_id}").get_data(as_text=True)


def test_a_result_without_a_value_is_refused_with_the_error_next_to_the_field(
    as_user, people
) -> None:
    client = as_user("dr_chen")
    response = _publish(client, _alice(people), result_value="")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'aria-describedby="result_value-error"' in html


def test_a_value_too_large_to_be_a_result_is_refused_next_to_the_field(as_user, people) -> None:
    client = as_user("dr_chen")
    response = _publish(client, _alice(people), result_value="9" * 200)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Enter a number between -1,000,000,000,000,000 and 1,000,000,000,000,000." in html
    assert 'aria-describedby="result_value-error"' in html


def test_a_pdf_report_is_attached_to_the_published_version_and_downloads_for_the_provider(
    session: Session, as_user, people: Demo
) -> None:
    from io import BytesIO

    client = as_user("dr_chen")
    response = post(
        client,
        f"/staff/patients/{_alice(people)}/results/new",
        {
            "test_code": "718-7",
            "test_name": "Hemoglobin",
            "result_value": "14.0",
            "visibility": "shared",
            "action": "final",
            "report": (BytesIO(MINIMAL_PDF), "hb.pdf"),
        },
        content_type="multipart/form-data",
    )
    result_id = _result_id(response)
    version = labs.versions_of(session, people.actor("dr_chen"), _result(session, result_id))[0]
    row = session.scalar(
        unscoped(select(Attachment).where(Attachment.lab_result_version_id == version.id), "t")
    )
    assert row is not None
    assert row.filename == "hb.pdf"
    page = client.get(f"/staff/results/{result_id}").get_data(as_text=True)
    link = page.split('href="/staff/attachments/')[1].split('"')[0]
    download = client.get(f"/staff/attachments/{link}")
    assert download.status_code == 200
    assert download.data == MINIMAL_PDF


def test_a_correction_needs_a_reason(as_user, people) -> None:
    client = as_user("dr_chen")
    result_id = _result_id(_publish(client, _alice(people)))
    response = post(
        client,
        f"/staff/results/{result_id}/correct",
        {"result_value": "15.0", "status": "corrected", "visibility": "shared", "reason": ""},
    )
    assert response.status_code == 422
    assert "Say why this result is being changed." in response.get_data(as_text=True)


def test_a_correction_of_a_seen_result_keeps_the_earlier_version_visible_to_the_patient(
    session: Session, as_user, people: Demo, alice_client: FlaskClient
) -> None:
    # Arrange: alice has seen 19.0
    client = as_user("dr_chen")
    result_id = _result_id(_publish(client, _alice(people)))
    assert "19.0" in alice_client.get(f"/my/lab-results/{result_id}").get_data(as_text=True)
    # Act
    response = post(
        client,
        f"/staff/results/{result_id}/correct",
        {
            "result_value": "15.1",
            "units": "g/dL",
            "reference_range": "12.0-17.5",
            "status": "corrected",
            "visibility": "shared",
            "reason": "Transcription error in the first report.",
        },
    )
    # Assert
    assert response.status_code == 303
    mine = labs.versions_of(session, people.actor("alice"), _result(session, result_id))
    assert [(v.version, v.result_value) for v in mine] == [(2, "15.1"), (1, "19.0")]
    page = alice_client.get(f"/my/lab-results/{result_id}").get_data(as_text=True)
    assert "15.1" in page
    assert "19.0" in page
    assert "Transcription error in the first report." in page
    assert 'Version 1: Final <span class="status">Superseded</span>' in page
    assert "Corrected lab result: Hemoglobin" in _notifications(session, people.actor("alice"))
    staff_page = client.get(f"/staff/results/{result_id}").get_data(as_text=True)
    assert "(superseded)" in staff_page


def _hold_genetic_test(client: FlaskClient, people: Demo) -> int:
    return _result_id(
        _publish(
            client,
            _alice(people),
            test_code="21636-6",
            test_name="BRCA1 gene mutations",
            result_value="Pathogenic variant c.68_69del",
        )
    )


SECRET = "Pathogenic variant c.68_69del"


@pytest.mark.usefixtures("category_rules")
def test_a_held_result_is_invisible_to_the_patient_until_a_provider_reviews_and_releases_it(
    session: Session, as_user, people: Demo, alice_client: FlaskClient
) -> None:
    # Arrange
    client = as_user("dr_chen")
    alice_user = people.actor("alice")
    # Act: publish a genetic test (hold for review, never automatic)
    result_id = _hold_genetic_test(client, people)
    # Assert: a placeholder at most, never the value
    page = alice_client.get("/my/lab-results").get_data(as_text=True)
    fragment = alice_client.get("/my/lab-results", headers={"HX-Request": "true"})
    assert SECRET not in page
    assert "BRCA1 gene mutations" in page  # the placeholder names the test
    assert SECRET not in fragment.get_data(as_text=True)
    assert alice_client.get(f"/my/lab-results/{result_id}").status_code == 404
    assert not any("BRCA1" in t for t in _notifications(session, alice_user))
    held = [
        h for h in labs.held_results(session, people.actor("alice")) if h.result_id == result_id
    ]
    assert [(h.test_name, h.reviewer_name, h.release_due_at) for h in held] == [
        ("BRCA1 gene mutations", "Dr Mei Chen", None)
    ]
    assert labs.release_due(session, utcnow() + timedelta(days=365)) == 0
    # Act: review and release
    assert post(client, f"/staff/results/{result_id}/release").status_code == 303
    # Assert
    assert SECRET in alice_client.get(f"/my/lab-results/{result_id}").get_data(as_text=True)
    assert "New lab result: BRCA1 gene mutations" in _notifications(session, alice_user)
    assert result_id not in {h.result_id for h in labs.held_results(session, people.actor("alice"))}
    released = session.scalar(
        select(AuditEvent).where(
            AuditEvent.action == AuditAction.RELEASE, AuditEvent.entity_id == str(result_id)
        )
    )
    assert released is not None
    assert released.actor_id == people.user("dr_chen").id


def test_releasing_a_result_with_nothing_held_is_refused(as_user, people) -> None:
    client = as_user("dr_chen")
    result_id = _result_id(_publish(client, _alice(people)))
    assert post(client, f"/staff/results/{result_id}/release").status_code == 422


@pytest.mark.usefixtures("category_rules")
def test_a_delayed_category_is_released_by_the_timer_once_its_time_has_come(
    session: Session, as_user, people: Demo, alice_client: FlaskClient
) -> None:
    # Arrange: hematology results wait 24 hours
    settings.set_release_policy(
        session,
        people.actor("admin"),
        category="hematology",
        mode=ReleaseMode.AUTO_AFTER_DELAY,
        delay_hours=24,
        never_auto_release=False,
    )
    session.commit()
    start = utcnow()
    set_clock(lambda: start)
    client = as_user("dr_chen")
    result_id = _result_id(_publish(client, _alice(people), result_value="16.6"))
    assert alice_client.get(f"/my/lab-results/{result_id}").status_code == 404
    [held] = [
        h for h in labs.held_results(session, people.actor("alice")) if h.result_id == result_id
    ]
    assert held.release_due_at == start + timedelta(hours=24)
    # Act and assert: not yet after 23 hours, released after 25
    assert labs.release_due(session, start + timedelta(hours=23)) == 0
    set_clock(lambda: start + timedelta(hours=25))
    assert labs.release_due(session) == 1
    session.commit()
    set_clock(SUITE_CLOCK)  # back to the sessions' time: a day's jump would end them as idle
    assert "16.6" in alice_client.get(f"/my/lab-results/{result_id}").get_data(as_text=True)
    assert "New lab result: Hemoglobin" in _notifications(session, people.actor("alice"))[-1:]


def test_a_patient_who_wants_review_first_gets_results_only_after_review(
    session: Session, as_user, people: Demo, alice_client: FlaskClient
) -> None:
    people.user("alice").patient.release_preference = ReleasePreference.AFTER_REVIEW
    session.commit()
    client = as_user("dr_chen")
    result_id = _result_id(_publish(client, _alice(people), result_value="12.9"))
    assert alice_client.get(f"/my/lab-results/{result_id}").status_code == 404
    assert "Waiting for release" in client.get(f"/staff/results/{result_id}").get_data(as_text=True)
    assert post(client, f"/staff/results/{result_id}/release").status_code == 303
    assert alice_client.get(f"/my/lab-results/{result_id}").status_code == 200


def test_the_result_page_names_the_clinicians_hold_and_its_reason(
    as_user, session: Session, people: Demo
) -> None:
    held = session.scalar(
        unscoped(
            select(LabResult.id).where(
                LabResult.patient_id == _alice(people), LabResult.held_until.is_not(None)
            ),
            "test: the demo's held result",
        )
    )
    page = as_user("dr_chen").get(f"/staff/results/{held}").get_data(as_text=True)
    assert "Held by Dr Mei Chen until " in page
    assert "to prevent harm: A genetic result is explained in person first" in page

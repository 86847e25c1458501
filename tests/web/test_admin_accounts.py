"""Administration: staff accounts, patient registration, deactivation and care teams."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.models import ActivationCode, AuditAction, AuditEvent, PatientProfile, User
from portal.services import accounts
from tests.conftest import Demo, csrf_token, login, post
from tests.web.audit_support import entries_for


def test_creating_a_provider_shows_a_one_time_invitation_link_that_works(
    app: Flask, session: Session, as_user
) -> None:
    # Arrange
    client = as_user("admin")
    # Act
    response = post(
        client,
        "/admin/users/new",
        {"email": "Dr.New@Example.org", "display_name": "Dr New", "role": "provider"},
    )
    # Assert
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    match = re.search(r"(https?://[^<\s]+/invitation/[^<\s]+)", html)
    assert match, html[:2000]
    user = session.scalar(select(User).where(User.email == "dr.new@example.org"))
    assert user is not None
    assert user.provider is not None
    assert user.password_hash is None
    newcomer = app.test_client()
    path = match.group(1).split("localhost", 1)[-1]
    page = newcomer.get(path)
    assert page.status_code == 200


def test_an_existing_email_is_refused_with_the_error_on_the_field(as_user) -> None:
    response = post(
        as_user("admin"),
        "/admin/users/new",
        {"email": "dr.chen@example.org", "display_name": "Again", "role": "provider"},
    )
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)


def test_registering_a_patient_shows_the_activation_code_once(
    app: Flask, session: Session, as_user
) -> None:
    client = as_user("admin")
    response = post(
        client,
        "/admin/patients/new",
        {"medical_record_number": "mrn-300001", "display_name": "Gita Test"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    code = re.search(r"<strong>([0-9A-F]{4}(?:-[0-9A-F]{4}){3})</strong>", html)
    assert code
    assert "MRN-300001" in client.get("/admin/patients?q=gita").get_data(as_text=True)
    patient_app = app.test_client()
    activated = patient_app.post(
        "/activate",
        data={
            "code": code.group(1),
            "email": "gita@example.org",
            "password": "A long enough passphrase 42",
            "confirm": "A long enough passphrase 42",
            "csrf_token": csrf_token(patient_app, "/activate"),
        },
    )
    assert activated.status_code == 303


def test_deactivating_an_account_ends_its_sessions_at_once(
    app: Flask, as_user, people: Demo
) -> None:
    # Arrange: dr.okafor is signed in elsewhere
    okafor = app.test_client()
    login(okafor, "dr.okafor@example.org")
    assert okafor.get("/staff/patients").status_code == 200
    # Act
    admin = as_user("admin")
    response = post(admin, f"/admin/users/{people.user('dr_okafor').id}/deactivate")
    # Assert
    assert response.status_code == 303
    assert okafor.get("/staff/patients").status_code == 302
    assert "Deactivated" in admin.get("/admin/users").get_data(as_text=True)
    post(admin, f"/admin/users/{people.user('dr_okafor').id}/reactivate")
    again = app.test_client()
    login(again, "dr.okafor@example.org")


def test_an_admin_cannot_deactivate_their_own_account(session: Session, as_user, people) -> None:
    # Act: the page offers no button for it; a crafted request meets the service's rule.
    client = as_user("admin")
    response = post(client, f"/admin/users/{people.user('admin').id}/deactivate")
    # Assert: the service's own words, after the redirect; nothing changed.
    assert response.status_code == 303
    users = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You cannot deactivate your own account." in users
    session.expire_all()
    assert people.user("admin").is_active


def test_no_new_activation_code_for_an_activated_patient(
    session: Session, as_user, people: Demo
) -> None:
    # Arrange
    alice = people.user("alice").patient.id
    codes = select(func.count()).select_from(ActivationCode)
    before = session.scalar(codes)
    client = as_user("admin")
    # Act
    response = post(client, f"/admin/patients/{alice}/activation-code")
    # Assert: back to the care team with the service's message; no code was made.
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "This patient has already activated their account." in page
    assert session.scalar(codes) == before


def test_a_new_code_for_a_patient_not_yet_activated_is_shown_once(
    session: Session, as_user
) -> None:
    client = as_user("admin")
    registered = post(
        client, "/admin/patients/new", {"medical_record_number": "MRN-300002", "display_name": "H"}
    )
    assert registered.status_code == 200
    patient = session.scalar(
        unscoped(
            select(PatientProfile.id).where(PatientProfile.medical_record_number == "MRN-300002"),
            "test",
        )
    )
    again = post(client, f"/admin/patients/{patient}/activation-code")
    assert again.status_code == 200
    assert re.search(r"<strong>[0-9A-F]{4}(?:-[0-9A-F]{4}){3}</strong>", again.get_data(True))


def test_a_duplicate_mrn_is_refused_on_its_field_and_registers_nobody(
    session: Session, as_user
) -> None:
    response = post(
        as_user("admin"),
        "/admin/patients/new",
        {"medical_record_number": "mrn-100001", "display_name": "Alice Again"},
    )
    assert response.status_code == 422
    assert 'id="medical_record_number-error"' in response.get_data(as_text=True)
    names = select(PatientProfile.id).where(PatientProfile.display_name == "Alice Again")
    assert session.scalar(unscoped(names, "test")) is None


def test_assigning_and_unassigning_a_provider_opens_and_closes_the_chart(
    app: Flask, session: Session, as_user, people: Demo
) -> None:
    # Arrange
    alice = people.user("alice").patient.id
    okafor_provider = people.user("dr_okafor").provider.id
    okafor = app.test_client()
    login(okafor, "dr.okafor@example.org")
    assert okafor.get(f"/staff/patients/{alice}").status_code == 404
    admin = as_user("admin")
    # Act and assert
    added = post(admin, f"/admin/patients/{alice}/care-team", {"provider_id": str(okafor_provider)})
    assert added.status_code == 303
    assert okafor.get(f"/staff/patients/{alice}").status_code == 200
    removed = post(admin, f"/admin/patients/{alice}/care-team/{okafor_provider}/remove")
    assert removed.status_code == 303
    assert okafor.get(f"/staff/patients/{alice}").status_code == 404
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.entity_type == "care_assignment")
    ).all()
    assert AuditAction.ASSIGN in actions
    assert AuditAction.UNASSIGN in actions


def test_a_refused_assignment_shows_the_care_team_again_with_422_and_is_audited(
    session: Session, as_user, people: Demo
) -> None:
    # Arrange: dr.chen is already on alice's team, so he is not among the choices.
    alice = people.user("alice").patient
    client = as_user("admin")
    # Act
    response = post(
        client,
        f"/admin/patients/{alice.id}/care-team",
        {"provider_id": str(people.user("dr_chen").provider.id)},
    )
    # Assert: the page names the patient, so its answer is a recorded read of her record.
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert alice.medical_record_number in html
    assert 'id="provider_id-error"' in html
    (entry,) = entries_for(session, response)
    assert (entry.action, entry.patient_id) == (AuditAction.VIEW, alice.id)


def test_only_an_active_provider_joins_a_care_team(session: Session, people: Demo) -> None:
    # Arrange
    admin = people.actor("admin")
    okafor = people.user("dr_okafor")
    accounts.set_active(session, admin, okafor, active=False)
    # Act and assert: the rule is the service's, for the JSON API as much as for the page.
    with pytest.raises(accounts.AccountError) as refused:
        accounts.assign_provider(
            session,
            admin,
            patient_id=people.user("alice").patient.id,
            provider_id=okafor.provider.id,
        )
    assert refused.value.field == "provider_id"
    team = accounts.care_team(session, admin, people.user("alice").patient.id)
    assert okafor.provider.id not in {p.id for p in team.candidates}


@pytest.mark.parametrize("cursor", ["%C2%B2", "1e9999", "-1", "%D9%A3", "9" * 40])
def test_a_page_link_the_list_did_not_make_shows_the_first_page_with_422(
    as_user, cursor: str
) -> None:
    response = as_user("admin").get(f"/admin/patients?cursor={cursor}")
    assert response.status_code == 422
    assert "This page link is not valid." in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "/admin/patients/99999999999999999999/care-team",
        "/admin/patients/0/care-team",
    ],
)
def test_a_patient_id_no_row_can_have_is_not_found(as_user, path: str) -> None:
    assert as_user("admin").get(path).status_code == 404


@pytest.mark.parametrize("action", ["deactivate", "reactivate"])
def test_a_user_id_no_row_can_have_is_not_found(as_user, action: str) -> None:
    response = post(as_user("admin"), f"/admin/users/99999999999999999999/{action}")
    assert response.status_code == 404

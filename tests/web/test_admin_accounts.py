"""Administration: staff accounts, patient registration, deactivation and care teams."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import AuditAction, AuditEvent, User
from tests.conftest import Demo, csrf_token, login, post


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
    client = as_user("admin")
    post(client, f"/admin/users/{people.user('admin').id}/deactivate")
    session.expire_all()
    assert people.user("admin").is_active


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

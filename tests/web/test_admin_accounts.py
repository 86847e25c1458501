"""Administration: staff accounts, patient registration, deactivation and care teams."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.audit import report
from portal.models import (
    ActivationCode,
    AuditAction,
    AuditEvent,
    CareAssignmentRequest,
    OutboxMail,
    PatientProfile,
    Role,
    User,
)
from portal.services import accounts
from tests.conftest import Demo, csrf_token, login, post
from tests.web.audit_support import entries_for


def test_creating_a_provider_mails_the_invitation_and_never_shows_it(
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
    # Assert: the admin's page says where it went, and carries no link
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "emailed to dr.new@example.org" in html
    assert "/invitation/" not in html
    user = session.scalar(select(User).where(User.email == "dr.new@example.org"))
    assert user is not None
    assert user.provider is not None
    assert user.password_hash is None
    # The invitee's own mail carries the link, built from PORTAL_URL, not the request's Host
    link = _link_in(_mail_to(session, "dr.new@example.org"), "invitation")
    assert link.startswith(app.config["PORTAL_URL"].rstrip("/") + "/invitation/")
    newcomer = app.test_client()
    path = link.removeprefix(app.config["PORTAL_URL"].rstrip("/"))
    assert newcomer.get(path).status_code == 200


def test_an_existing_email_is_refused_with_the_error_on_the_field(as_user) -> None:
    response = post(
        as_user("admin"),
        "/admin/users/new",
        {"email": "dr.chen@example.org", "display_name": "Again", "role": "provider"},
    )
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)


def _mail_to(session: Session, address: str) -> str:
    """The body of the last mail staged for `address`."""
    body = session.scalar(
        select(OutboxMail.body)
        .where(OutboxMail.to_address == address)
        .order_by(OutboxMail.id.desc())
        .limit(1)
    )
    assert body is not None, f"no mail to {address}"
    return body


def _link_in(body: str, kind: str) -> str:
    found = re.search(rf"(https?://\S+/{kind}/[A-Za-z0-9_-]+)", body)
    assert found, body
    return found.group(1)


def _code_in(body: str) -> str:
    found = re.search(r"\b([0-9A-F]{4}(?:-[0-9A-F]{4}){3})\b", body)
    assert found, body
    return found.group(1)


def _activate(app: Flask, code: str, email: str):  # type: ignore[no-untyped-def]
    patient_app = app.test_client()
    return patient_app.post(
        "/activate",
        data={
            "code": code,
            "email": email,
            "password": "A long enough passphrase 42",
            "confirm": "A long enough passphrase 42",
            "csrf_token": csrf_token(patient_app, "/activate"),
        },
    )


def test_registering_a_patient_mails_the_activation_code_and_never_shows_it(
    app: Flask, session: Session, as_user
) -> None:
    # Arrange
    client = as_user("admin")
    # Act
    response = post(
        client,
        "/admin/patients/new",
        {
            "medical_record_number": "mrn-300001",
            "display_name": "Gita Test",
            "contact_email": "gita.home@example.org",
        },
    )
    # Assert: the page names where the code went, never the code
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "emailed to gita.home@example.org" in html
    assert not re.search(r"[0-9A-F]{4}(?:-[0-9A-F]{4}){3}", html)
    assert "MRN-300001" in client.get("/admin/patients?q=gita").get_data(as_text=True)
    code = _code_in(_mail_to(session, "gita.home@example.org"))
    assert _activate(app, code, "gita@example.org").status_code == 303


def test_a_patient_without_an_email_address_is_registered_without_a_code(
    session: Session, as_user
) -> None:
    response = post(
        as_user("admin"),
        "/admin/patients/new",
        {"medical_record_number": "MRN-300003", "display_name": "No Mail"},
    )
    assert response.status_code == 200
    assert "Add their email address" in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(ActivationCode)) == session.scalar(
        select(func.count()).select_from(ActivationCode).where(ActivationCode.used_at.is_not(None))
    )


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


def test_a_new_code_for_a_patient_not_yet_activated_is_mailed_and_ends_the_old_one(
    app: Flask, session: Session, as_user
) -> None:
    # Arrange
    client = as_user("admin")
    registered = post(
        client,
        "/admin/patients/new",
        {
            "medical_record_number": "MRN-300002",
            "display_name": "H",
            "contact_email": "h.home@example.org",
        },
    )
    assert registered.status_code == 200
    first = _code_in(_mail_to(session, "h.home@example.org"))
    patient = session.scalar(
        unscoped(
            select(PatientProfile.id).where(PatientProfile.medical_record_number == "MRN-300002"),
            "test",
        )
    )
    # Act
    again = post(client, f"/admin/patients/{patient}/activation-code")
    # Assert
    assert again.status_code == 200
    assert not re.search(r"[0-9A-F]{4}(?:-[0-9A-F]{4}){3}", again.get_data(as_text=True))
    second = _code_in(_mail_to(session, "h.home@example.org"))
    assert second != first
    assert _activate(app, first, "h@example.org").status_code == 422
    assert _activate(app, second, "h@example.org").status_code == 303


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
    team = accounts.care_team_screen(session, admin, people.user("alice").patient.id)
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


# --- No one person alone (issue 11, point 6) ---------------------------------------------------

STAFF_PASSWORD = "a long staff passphrase"


def _accept(app: Flask, link: str, password: str = STAFF_PASSWORD):  # type: ignore[no-untyped-def]
    newcomer = app.test_client()
    path = link.removeprefix(app.config["PORTAL_URL"].rstrip("/"))
    data = {"password": password, "confirm": password}
    return newcomer.post(path, data={**data, "csrf_token": csrf_token(newcomer, path)})


def _second_admin(session: Session) -> User:
    user, _ = accounts.create_staff(
        session,
        None,
        email="second.admin@example.org",
        role=Role.ADMIN,
        display_name="Second admin",
        password=STAFF_PASSWORD,
    )
    session.commit()
    return user


def test_an_admin_who_invites_a_provider_cannot_open_a_patients_records_to_it_alone(
    app: Flask, session: Session, as_user, people: Demo
) -> None:
    # Arrange: the admin creates a provider, and (holding the mailbox) accepts the invitation
    alice = people.user("alice").patient
    admin = as_user("admin")
    post(admin, "/admin/users/new", {"email": "dr.x@example.org", "display_name": "Dr X"})
    accepted = _accept(app, _link_in(_mail_to(session, "dr.x@example.org"), "invitation"))
    assert accepted.status_code == 303
    new = session.scalar(select(User).where(User.email == "dr.x@example.org"))
    assert new is not None
    assert new.provider is not None
    provider = app.test_client()
    login(provider, "dr.x@example.org", STAFF_PASSWORD)
    # Act: the same admin puts that account on alice's care team
    asked = post(admin, f"/admin/patients/{alice.id}/care-team", {"provider_id": new.provider.id})
    # Assert: it waits; the account still cannot open her chart, nor can its creator confirm
    assert asked.status_code == 303
    team = admin.get(asked.headers["Location"]).get_data(as_text=True)
    assert "another administrator must confirm" in team
    assert provider.get(f"/staff/patients/{alice.id}").status_code == 404
    (waiting,) = session.scalars(
        select(CareAssignmentRequest).where(CareAssignmentRequest.patient_id == alice.id)
    )
    confirm = f"/admin/patients/{alice.id}/care-team/requests/{waiting.id}/confirm"
    refused = post(admin, confirm)
    assert refused.status_code == 303
    assert "Another administrator must confirm" in admin.get(refused.headers["Location"]).text
    assert provider.get(f"/staff/patients/{alice.id}").status_code == 404
    # A second admin confirms, and only then the chart opens
    _second_admin(session)
    second = app.test_client()
    login(second, "second.admin@example.org", STAFF_PASSWORD)
    assert post(second, confirm).status_code == 303
    assert provider.get(f"/staff/patients/{alice.id}").status_code == 200
    # Every step is in alice's access log: asked, confirmed (by whom, for whom)
    steps = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.patient_id == alice.id, AuditEvent.action == AuditAction.ASSIGN)
        .order_by(AuditEvent.id)
    ).all()
    assert [(e.entity_type, e.actor_id) for e in steps[-2:]] == [
        ("care_assignment_request", people.user("admin").id),
        ("care_assignment", session.scalar(select(User.id).where(User.email.like("second%")))),
    ]
    log = report.access_log_for_patient(session, people.actor("alice"), limit=100).rows
    assert {(e.who, e.record) for e in log} >= {
        ("Portal administrator", "your care team (waiting for a second administrator)"),
        ("Portal administrator", "your care team"),
    }


def test_accepting_an_invitation_is_audited(app: Flask, session: Session, as_user) -> None:
    post(as_user("admin"), "/admin/users/new", {"email": "dr.y@example.org", "display_name": "Y"})
    link = _link_in(_mail_to(session, "dr.y@example.org"), "invitation")

    assert _accept(app, link).status_code == 303

    new_id = session.scalar(select(User.id).where(User.email == "dr.y@example.org"))
    entry = session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    assert entry is not None
    assert (entry.action, entry.entity_type, entry.actor_id) == (
        AuditAction.ACTIVATE,
        "invitation",
        new_id,
    )
    assert _accept(app, link, "another long passphrase").status_code == 422


def test_an_invitation_claimed_while_it_is_being_used_is_refused(
    app: Flask, session: Session, people: Demo
) -> None:
    # Arrange: another request claims the link between this one's read and its write
    user, token = accounts.create_staff(
        session,
        people.actor("admin"),
        email="dr.z@example.org",
        role=Role.PROVIDER,
        display_name="Z",
    )
    assert token
    engine = app.extensions["portal.db"]["engine"]
    raced: list[str] = []

    def other_request_first(_conn, cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if not raced and statement.lstrip().upper().startswith("UPDATE INVITATION"):
            raced.append(statement)
            cursor.execute("UPDATE invitation SET used_at = expires_at WHERE used_at IS NULL")

    event.listen(engine, "before_cursor_execute", other_request_first)
    # Act and assert: only one of the two sets the password
    try:
        with pytest.raises(accounts.AccountError):
            accounts.accept_invitation(session, token=token, password=STAFF_PASSWORD)
    finally:
        event.remove(engine, "before_cursor_execute", other_request_first)
    assert raced
    assert user.password_hash is None


def test_an_admin_account_the_requester_brought_in_cannot_confirm_for_them(
    app: Flask, session: Session, as_user, people: Demo
) -> None:
    # Arrange: the admin invites a second "admin" (their own other mailbox) and a provider
    alice = people.user("alice").patient
    admin = as_user("admin")
    post(
        admin,
        "/admin/users/new",
        {"email": "puppet@example.org", "display_name": "Puppet", "role": "admin"},
    )
    assert (
        _accept(app, _link_in(_mail_to(session, "puppet@example.org"), "invitation")).status_code
        == 303
    )
    post(admin, "/admin/users/new", {"email": "dr.p@example.org", "display_name": "Dr P"})
    assert (
        _accept(app, _link_in(_mail_to(session, "dr.p@example.org"), "invitation")).status_code
        == 303
    )
    provider = session.scalar(select(User).where(User.email == "dr.p@example.org"))
    assert provider is not None
    assert provider.provider is not None
    post(admin, f"/admin/patients/{alice.id}/care-team", {"provider_id": provider.provider.id})
    (waiting,) = session.scalars(
        select(CareAssignmentRequest).where(CareAssignmentRequest.patient_id == alice.id)
    )
    # Act: the puppet confirms
    puppet = app.test_client()
    login(puppet, "puppet@example.org", STAFF_PASSWORD)
    confirm = f"/admin/patients/{alice.id}/care-team/requests/{waiting.id}/confirm"
    refused = post(puppet, confirm)
    # Assert
    assert "Another administrator must confirm" in puppet.get(refused.headers["Location"]).text
    session.expire_all()
    assert session.get_one(CareAssignmentRequest, waiting.id).decided_at is None

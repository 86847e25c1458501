"""An administrator's account tools (issue 11, points 2, 3 and 8): the user list, an account's
page (pause, sessions, details), a patient's demographics, mailed resets and invitations, and
resetting the access of a patient who lost their email, never alone."""

from __future__ import annotations

import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.db import utcnow
from portal.models import AuditAction, AuditEvent, Entity, OutboxMail, PatientProfile, Role, User
from portal.services import account_admin, accounts, throttle
from tests.conftest import DEMO_EMAILS, Demo, csrf_token, login, post
from tests.support import PASSWORD, sign_in_limits
from tests.web.audit_support import entries_for

STAFF_PASSWORD = "a long staff passphrase"
NEW_PASSPHRASE = "my brand new passphrase"


def _mail_to(session: Session, address: str) -> str:
    body = session.scalar(
        select(OutboxMail.body)
        .where(OutboxMail.to_address == address)
        .order_by(OutboxMail.id.desc())
        .limit(1)
    )
    assert body is not None, f"no mail to {address}"
    return body


def _entry_of(session: Session, response) -> AuditEvent:  # type: ignore[no-untyped-def]
    """The one entry the change answered by `response` wrote."""
    (entry,) = entries_for(session, response)
    return entry


def _flash_after(client: FlaskClient, response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 303, response.status_code
    return client.get(response.headers["Location"]).get_data(as_text=True)


def _second_admin(app: Flask, session: Session) -> FlaskClient:
    accounts.create_staff(
        session,
        None,
        email="second.admin@example.org",
        role=Role.ADMIN,
        display_name="Second admin",
        password=STAFF_PASSWORD,
    )
    session.commit()
    second = app.test_client()
    login(second, "second.admin@example.org", STAFF_PASSWORD)
    return second


# --- The user list --------------------------------------------------------------------------


def test_the_user_list_is_searched_by_name_or_email(as_user) -> None:
    admin = as_user("admin")

    by_name = admin.get("/admin/users?q=okaf").get_data(as_text=True)
    by_email = admin.get("/admin/users?q=ALICE@").get_data(as_text=True)

    assert "dr.okafor@example.org" in by_name
    assert "alice@example.org" not in by_name
    assert "1 account matching" in by_email
    assert "alice@example.org" in by_email


def test_the_user_list_pages_with_the_one_page_type(session: Session, people: Demo) -> None:
    admin = people.actor("admin")
    first = account_admin.search_users(session, admin, limit=2)
    second = account_admin.search_users(session, admin, cursor=first.next_cursor, limit=2)

    assert [r.email for r in first.rows] == sorted(r.email for r in first.rows)
    assert first.total == second.total
    assert first.total is not None
    assert first.total >= len(DEMO_EMAILS)
    assert first.rows[-1].email < second.rows[0].email
    assert second.previous_cursor is not None


def test_a_page_link_the_user_list_did_not_make_is_a_422(as_user) -> None:
    response = as_user("admin").get("/admin/users?cursor=not-a-cursor")
    assert response.status_code == 422
    assert "This page link is not valid." in response.get_data(as_text=True)


@pytest.mark.parametrize("who", ["alice", "dr_chen"])
def test_only_admins_reach_the_account_tools(as_user, people: Demo, who: str) -> None:
    client = as_user(who)
    bob = people.user("bob").id
    assert client.get(f"/admin/users/{bob}").status_code in (403, 404)
    assert post(client, f"/admin/users/{bob}/sessions/end-all").status_code in (403, 404)


# --- One account: pause, sessions, details ---------------------------------------------------


def test_an_admin_sees_a_sign_in_pause_and_clears_it(
    app: Flask, session: Session, as_user, people: Demo
) -> None:
    # Arrange: bob's address is paused after failed sign-ins
    limits = sign_in_limits()
    keys = throttle.keys_for(DEMO_EMAILS["bob"], None, limits)
    for _ in range(limits.per_account):
        throttle.count_failure(session, keys, limits, utcnow())
    session.commit()
    bob_id = people.user("bob").id
    admin = as_user("admin")
    assert "Signing in is paused" in admin.get(f"/admin/users/{bob_id}").get_data(as_text=True)
    # Act
    done = post(admin, f"/admin/users/{bob_id}/unlock")
    # Assert: cleared, recorded, and bob signs in at once
    page = _flash_after(admin, done)
    assert "The sign-in pause is cleared." in page
    assert "Signing in is not paused" in page
    entry = _entry_of(session, done)
    assert (entry.entity_type, entry.actor_id) == ("sign_in_throttle", people.user("admin").id)
    login(app.test_client(), DEMO_EMAILS["bob"])


def test_an_admin_sees_a_users_sessions_and_ends_them(
    app: Flask, session: Session, as_user, people: Demo
) -> None:
    # Arrange: bob signed in on a device
    bob = app.test_client()
    login(bob, DEMO_EMAILS["bob"])
    assert bob.get("/my/").status_code == 200
    bob_id = people.user("bob").id
    admin = as_user("admin")
    page = admin.get(f"/admin/users/{bob_id}").get_data(as_text=True)
    ends = re.findall(rf"/admin/users/{bob_id}/sessions/(\d+)/end", page)
    assert ends
    # Act: end that one session
    for session_id in ends:
        done = post(admin, f"/admin/users/{bob_id}/sessions/{session_id}/end")
        assert "That session is ended." in _flash_after(admin, done)
    # Assert: bob is signed out there; ending it again is refused without harm
    assert bob.get("/my/").status_code == 302
    again = post(admin, f"/admin/users/{bob_id}/sessions/{ends[0]}/end")
    assert "That session has already ended." in _flash_after(admin, again)
    entry = _entry_of(session, done)
    assert (entry.action, entry.patient_id) == (AuditAction.UPDATE, people.user("bob").patient.id)


def test_editing_an_email_is_audited_with_before_and_after_and_told_to_the_old_address(
    session: Session, as_user, people: Demo
) -> None:
    okafor = people.user("dr_okafor")
    admin = as_user("admin")

    done = post(
        admin,
        f"/admin/users/{okafor.id}",
        {
            "email": "Chidi.Okafor@Example.org",
            "display_name": "Dr Chidi Okafor",
            "specialty": "Family medicine",
            "clinic": "Hillside Clinic",
        },
    )

    assert "The account is saved." in _flash_after(admin, done)
    entry = _entry_of(session, done)
    assert entry.entity_type == Entity.USER_EMAIL
    detail = json.loads(entry.detail)
    assert (detail["before"], detail["after"]) == (
        {"email": "dr.okafor@example.org"},
        {"email": "chidi.okafor@example.org"},
    )
    assert "changed the email address" in _mail_to(session, "dr.okafor@example.org")


def test_an_email_another_account_uses_is_refused_on_its_field(
    session: Session, as_user, people: Demo
) -> None:
    okafor = people.user("dr_okafor")
    response = post(
        as_user("admin"),
        f"/admin/users/{okafor.id}",
        {"email": "dr.chen@example.org", "display_name": "Dr Chidi Okafor"},
    )
    assert response.status_code == 422
    assert 'id="email-error"' in response.get_data(as_text=True)
    session.expire_all()
    assert okafor.email == "dr.okafor@example.org"


def test_editing_demographics_is_audited_in_the_patients_access_log(
    session: Session, as_user, people: Demo
) -> None:
    alice = people.user("alice").patient
    admin = as_user("admin")
    form = {
        "medical_record_number": "mrn-100001",
        "display_name": "Alice Martin-Lee",
        "date_of_birth": "1984-03-12",
        "primary_clinic": "Riverside Clinic",
        "contact_email": "alice@example.org",
    }

    done = post(admin, f"/admin/patients/{alice.id}/edit", form)

    assert "saved" in _flash_after(admin, done)
    entry = _entry_of(session, done)
    assert (entry.action, entry.entity_type, entry.patient_id) == (
        AuditAction.UPDATE,
        "patient_profile",
        alice.id,
    )
    detail = json.loads(entry.detail)
    assert detail["before"] == {"display_name": "Alice Martin"}
    assert detail["after"] == {"display_name": "Alice Martin-Lee"}


def test_a_duplicate_mrn_is_refused_on_its_field_and_changes_nothing(
    session: Session, as_user, people: Demo
) -> None:
    alice = people.user("alice").patient
    response = post(
        as_user("admin"),
        f"/admin/patients/{alice.id}/edit",
        {"medical_record_number": "MRN-100002", "display_name": "Changed Name"},
    )
    assert response.status_code == 422
    assert 'id="medical_record_number-error"' in response.get_data(as_text=True)
    session.expire_all()
    mrn = session.scalar(
        unscoped(select(PatientProfile.display_name).where(PatientProfile.id == alice.id), "test")
    )
    assert mrn == "Alice Martin"


# --- Mailed credentials ---------------------------------------------------------------------


def test_staff_send_a_reset_link_to_the_accounts_own_address(
    app: Flask, session: Session, as_user, people: Demo
) -> None:
    bob = people.user("bob")
    admin = as_user("admin")

    done = post(admin, f"/admin/users/{bob.id}/password-reset")

    page = _flash_after(admin, done)
    assert "was emailed to them" in page
    assert "/reset-password/" not in page
    link = re.search(r"/reset-password/([A-Za-z0-9_-]+)", _mail_to(session, bob.email))
    assert link
    entry = _entry_of(session, done)
    assert (entry.entity_type, entry.actor_id, entry.patient_id) == (
        "password_reset",
        people.user("admin").id,
        bob.patient.id,
    )
    stranger = app.test_client()
    path = f"/reset-password/{link.group(1)}"
    data = {"password": NEW_PASSPHRASE, "confirm": NEW_PASSPHRASE}
    set_it = stranger.post(path, data={**data, "csrf_token": csrf_token(stranger, path)})
    assert set_it.status_code == 303


def test_the_admin_who_changed_an_address_cannot_mail_credentials_to_it(
    app: Flask, session: Session, as_user, people: Demo
) -> None:
    # Arrange: the admin points bob's account at their own mailbox
    bob = people.user("bob")
    admin = as_user("admin")
    post(admin, f"/admin/users/{bob.id}", {"email": "admins.own@example.org"})
    session.expire_all()
    assert bob.email == "admins.own@example.org"
    # Act
    refused = post(admin, f"/admin/users/{bob.id}/password-reset")
    # Assert: refused; another admin may send it (and bob's old address was told)
    assert "another administrator must send this" in _flash_after(admin, refused)
    assert (
        session.scalar(
            select(OutboxMail.id).where(OutboxMail.to_address == "admins.own@example.org")
        )
        is None
    )
    assert "changed the email address" in _mail_to(session, DEMO_EMAILS["bob"])
    second = _second_admin(app, session)
    assert "was emailed" in _flash_after(
        second, post(second, f"/admin/users/{bob.id}/password-reset")
    )


def test_a_new_invitation_is_mailed_and_ends_the_old_link(
    app: Flask, session: Session, as_user
) -> None:
    admin = as_user("admin")
    post(admin, "/admin/users/new", {"email": "dr.w@example.org", "display_name": "W"})
    first = re.search(r"/invitation/(\S+)", _mail_to(session, "dr.w@example.org"))
    assert first
    user = session.scalar(select(User).where(User.email == "dr.w@example.org"))
    assert user is not None

    done = post(admin, f"/admin/users/{user.id}/invitation")

    assert "A new invitation was emailed" in _flash_after(admin, done)
    second = re.search(r"/invitation/(\S+)", _mail_to(session, "dr.w@example.org"))
    assert second
    assert second.group(1) != first.group(1)
    newcomer = app.test_client()
    data = {"password": STAFF_PASSWORD, "confirm": STAFF_PASSWORD}
    for token, status in ((first.group(1), 422), (second.group(1), 303)):
        path = f"/invitation/{token}"
        answer = newcomer.post(path, data={**data, "csrf_token": csrf_token(newcomer, path)})
        assert answer.status_code == status


# --- A patient who lost their email ---------------------------------------------------------


def _activate(client: FlaskClient, code: str, email: str, born: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/activate",
        data={
            "code": code,
            "email": email,
            "password": NEW_PASSPHRASE,
            "confirm": NEW_PASSPHRASE,
            "date_of_birth": born,
            "csrf_token": csrf_token(client, "/activate"),
        },
    )


def test_a_patient_who_lost_their_email_gets_access_again_through_two_admins(
    app: Flask, session: Session, as_user, people: Demo
) -> None:
    # Arrange: bob is signed in on a phone; at the desk he gives a new contact address
    bob = people.user("bob")
    phone = app.test_client()
    login(phone, DEMO_EMAILS["bob"])
    admin = as_user("admin")
    form = {
        "medical_record_number": bob.patient.medical_record_number,
        "display_name": bob.patient.display_name,
        "date_of_birth": "1969-11-02",
        "contact_email": "bob.new@example.org",
    }
    post(admin, f"/admin/patients/{bob.patient.id}/edit", form)
    # Act: the admin who typed the address may not send the code there; a second admin does
    reset = f"/admin/patients/{bob.patient.id}/access-reset"
    refused = _flash_after(admin, post(admin, reset))
    assert "another administrator must send this" in refused
    assert login_works(app, DEMO_EMAILS["bob"], PASSWORD)
    second = _second_admin(app, session)
    assert "new activation code was emailed" in _flash_after(second, post(second, reset))
    # Assert: the old password and sessions are gone, the forgot-password link goes nowhere
    assert phone.get("/my/").status_code == 302
    assert not login_works(app, DEMO_EMAILS["bob"], PASSWORD)
    entry = session.scalar(
        select(AuditEvent)
        .where(AuditEvent.entity_type == "user_account", AuditEvent.patient_id == bob.patient.id)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    assert entry is not None
    assert json.loads(entry.detail)["access"] == "reset"
    # Bob activates again with the mailed code: the same account, a new address
    code = re.search(r"[0-9A-F]{4}(?:-[0-9A-F]{4}){3}", _mail_to(session, "bob.new@example.org"))
    assert code
    newcomer = app.test_client()
    assert (
        _activate(newcomer, code.group(0), "bob.new@example.org", "1969-11-02").status_code == 303
    )
    assert login_works(app, "bob.new@example.org", NEW_PASSPHRASE)
    session.expire_all()
    assert session.get_one(User, bob.id).email == "bob.new@example.org"


def login_works(app: Flask, email: str, password: str) -> bool:
    client = app.test_client()
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(client)},
    )
    return response.status_code == 303


def test_no_reset_link_for_an_account_waiting_for_a_new_activation(
    session: Session, people: Demo
) -> None:
    from portal.services import recovery

    bob = people.user("bob")
    bob.password_hash = None
    session.flush()
    before = session.scalar(select(OutboxMail.id).order_by(OutboxMail.id.desc()).limit(1))

    recovery.request_reset(session, email=bob.email, portal_url="http://portal.test")

    after = session.scalar(select(OutboxMail.id).order_by(OutboxMail.id.desc()).limit(1))
    assert after == before


def test_an_address_an_admin_set_gets_no_forgot_password_link_until_its_holder_signs_in(
    app: Flask, session: Session, as_user, people: Demo
) -> None:
    # Arrange: the admin points bob's sign-in address at their own mailbox
    from portal.services import recovery

    bob = people.user("bob")
    admin = as_user("admin")
    post(admin, f"/admin/users/{bob.id}", {"email": "admins.own@example.org"})
    session.expire_all()
    assert bob.email == "admins.own@example.org"
    sent = select(OutboxMail.id).where(OutboxMail.to_address == "admins.own@example.org")
    # Act: "Forgot your password?" for that address
    recovery.request_reset(session, email="admins.own@example.org", portal_url="http://p.test")
    # Assert: nothing is sent (the page's answer is the same either way)
    assert session.scalar(sent) is None
    # Once the holder signs in with it, the address is theirs, and recovery works again
    assert login_works(app, "admins.own@example.org", PASSWORD)
    session.expire_all()
    recovery.request_reset(session, email="admins.own@example.org", portal_url="http://p.test")
    assert session.scalar(sent) is not None


def test_changing_an_address_ends_the_links_sent_to_the_old_one(
    app: Flask, session: Session, as_user
) -> None:
    admin = as_user("admin")
    post(admin, "/admin/users/new", {"email": "dr.typo@example.org", "display_name": "Typo"})
    link = re.search(r"/invitation/(\S+)", _mail_to(session, "dr.typo@example.org"))
    assert link
    user = session.scalar(select(User).where(User.email == "dr.typo@example.org"))
    assert user is not None

    post(admin, f"/admin/users/{user.id}", {"email": "dr.right@example.org", "display_name": "T"})

    newcomer = app.test_client()
    path = f"/invitation/{link.group(1)}"
    data = {"password": STAFF_PASSWORD, "confirm": STAFF_PASSWORD}
    answer = newcomer.post(path, data={**data, "csrf_token": csrf_token(newcomer, path)})
    assert answer.status_code == 422

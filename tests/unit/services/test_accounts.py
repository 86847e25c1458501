"""Account rules that live in `portal.services.accounts`, whatever door (page, API) calls them."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.access import Actor
from portal.auth.passwords import verify_password
from portal.db import set_clock, utcnow
from portal.models import (
    ActivationCode,
    AuditAction,
    AuditEvent,
    AuditOutcome,
    AuthMethod,
    PatientProfile,
    User,
    UserSession,
)
from portal.services import accounts, sessions
from portal.services.accounts import FAILED_SIGN_IN, AccountError, Lockout
from tests.conftest import DEMO_EMAILS, Demo
from tests.support import PASSWORD

LOCKOUT = Lockout(max_failures=3, duration=timedelta(minutes=15))
NEW_PASSWORD = "a fresh and rather long passphrase"


def _sign_in(session: Session, email: str, password: str) -> accounts.SignIn:
    return accounts.authenticate(session, email=email, password=password, lockout=LOCKOUT)


def _last_entry(session: Session) -> AuditEvent:
    entry = session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    assert entry is not None
    return entry


def _start(session: Session, user: User) -> tuple[str, int]:
    """A new session of `user`: its secret and its row id."""
    token = sessions.start(session, user, method=AuthMethod.SESSION, client="Test")
    row_id = session.scalar(
        select(UserSession.id).where(UserSession.token_hash == sessions.token_hash(token))
    )
    assert row_id is not None
    return token, row_id


def _status(session: Session, token: str) -> sessions.Status:
    session.expire_all()  # as a new request would see it (revocations are bulk UPDATEs)
    return sessions.check(
        session, token, idle=timedelta(minutes=30), absolute=timedelta(hours=12)
    ).status


# --- authenticate ---


def test_sign_in_with_the_right_password_opens_the_account_and_is_recorded(
    session: Session, people: Demo
) -> None:
    bob = people.user("bob")

    attempt = _sign_in(session, DEMO_EMAILS["bob"], PASSWORD)

    assert attempt.user is bob
    assert attempt.refusal is None
    entry = _last_entry(session)
    assert (entry.action, entry.outcome, entry.actor_id) == (
        AuditAction.SIGN_IN,
        AuditOutcome.SUCCESS,
        bob.id,
    )
    assert bob.patient is not None
    assert entry.patient_id == bob.patient.id


def test_an_unknown_email_and_a_wrong_password_get_the_same_refusal(
    session: Session, people: Demo
) -> None:
    unknown = _sign_in(session, "nobody@example.org", PASSWORD)
    unknown_entry = _last_entry(session)
    wrong = _sign_in(session, DEMO_EMAILS["bob"], "not the password at all")
    wrong_entry = _last_entry(session)

    assert unknown == wrong == accounts.SignIn(None, FAILED_SIGN_IN)
    # Both are recorded as denied attempts; only the known account is named.
    for entry in (unknown_entry, wrong_entry):
        assert (entry.action, entry.outcome) == (AuditAction.SIGN_IN_FAILED, AuditOutcome.DENIED)
    assert unknown_entry.actor_id is None
    assert wrong_entry.actor_id == people.user("bob").id


def test_a_deactivated_account_gets_the_same_refusal(session: Session, people: Demo) -> None:
    people.user("bob").is_active = False

    assert _sign_in(session, DEMO_EMAILS["bob"], PASSWORD) == accounts.SignIn(None, FAILED_SIGN_IN)


def test_repeated_failures_pause_sign_in_even_with_the_right_password(
    session: Session, people: Demo
) -> None:
    # Arrange: the clock pinned, and one failure short of the limit
    now = utcnow()
    set_clock(lambda: now)
    bob = people.user("bob")
    for _ in range(LOCKOUT.max_failures - 1):
        _sign_in(session, DEMO_EMAILS["bob"], "wrong password")
    assert bob.locked_until is None
    # Act
    _sign_in(session, DEMO_EMAILS["bob"], "wrong password")
    attempt = _sign_in(session, DEMO_EMAILS["bob"], PASSWORD)
    # Assert
    assert bob.locked_until == now + LOCKOUT.duration
    assert attempt.user is None
    assert attempt.refusal is not None
    assert attempt.refusal.startswith(FAILED_SIGN_IN)
    assert "15 minutes" in attempt.refusal
    assert _last_entry(session).action is AuditAction.SIGN_IN_FAILED
    # Once the pause is over, the right password works again.
    set_clock(lambda: now + LOCKOUT.duration + timedelta(seconds=1))
    assert _sign_in(session, DEMO_EMAILS["bob"], PASSWORD).user is bob


def test_a_success_resets_the_failure_count(session: Session, people: Demo) -> None:
    for _ in range(LOCKOUT.max_failures - 1):
        _sign_in(session, DEMO_EMAILS["bob"], "wrong password")

    _sign_in(session, DEMO_EMAILS["bob"], PASSWORD)

    assert people.user("bob").failed_logins == 0


def test_a_hash_with_outdated_parameters_is_upgraded_at_sign_in(
    session: Session, people: Demo
) -> None:
    bob = people.user("bob")
    old = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash(PASSWORD)
    bob.password_hash = old

    assert _sign_in(session, DEMO_EMAILS["bob"], PASSWORD).user is bob

    assert bob.password_hash != old
    assert verify_password(bob.password_hash, PASSWORD) == (True, None)


# --- change_password ---


def test_a_wrong_current_password_is_refused_on_its_field(session: Session, people: Demo) -> None:
    alice = people.user("alice")
    before = alice.password_hash

    with pytest.raises(AccountError) as refused:
        accounts.change_password(
            session, people.actor("alice"), current_password="wrong", new_password=NEW_PASSWORD
        )

    assert refused.value.field == "current_password"
    assert alice.password_hash == before


def test_changing_the_password_ends_every_other_session_but_keeps_this_one(
    session: Session, people: Demo
) -> None:
    # Arrange: alice signed in on two devices, acting from the first
    alice = people.user("alice")
    here, here_id = _start(session, alice)
    phone, _ = _start(session, alice)
    actor = dataclasses.replace(people.actor("alice"), session_id=here_id)
    # Act
    accounts.change_password(session, actor, current_password=PASSWORD, new_password=NEW_PASSWORD)
    # Assert
    assert _status(session, here) is sessions.Status.VALID
    assert _status(session, phone) is sessions.Status.INVALID
    assert verify_password(alice.password_hash, NEW_PASSWORD)[0]
    assert _last_entry(session).action is AuditAction.PASSWORD_CHANGE


# --- set_active ---


def test_nobody_deactivates_their_own_account(session: Session, people: Demo) -> None:
    admin = people.user("admin")

    with pytest.raises(AccountError) as refused:
        accounts.set_active(session, people.actor("admin"), admin, active=False)

    assert refused.value.field is None
    assert admin.is_active


def test_deactivation_ends_every_session_of_the_account(session: Session, people: Demo) -> None:
    bob = people.user("bob")
    first, _ = _start(session, bob)
    second, _ = _start(session, bob)

    accounts.set_active(session, people.actor("admin"), bob, active=False)

    assert not bob.is_active
    assert _status(session, first) is sessions.Status.INVALID
    assert _status(session, second) is sessions.Status.INVALID
    revoked = session.scalars(
        select(UserSession.revoked_reason).where(UserSession.user_id == bob.id)
    )
    assert set(revoked) == {"deactivated"}
    # Reactivating does not bring the old sessions back.
    accounts.set_active(session, people.actor("admin"), bob, active=True)
    assert _status(session, first) is sessions.Status.INVALID


# --- issue_activation_code ---


def _codes(session: Session) -> int:
    return session.scalar(select(func.count(ActivationCode.id))) or 0


def test_no_activation_code_for_a_patient_who_already_activated(
    session: Session, people: Demo
) -> None:
    alice = people.user("alice").patient
    assert alice is not None
    before = _codes(session)

    with pytest.raises(AccountError) as refused:
        accounts.issue_activation_code(session, people.actor("admin"), alice)

    assert refused.value.field is None
    assert _codes(session) == before


def test_an_activation_code_opens_a_new_patients_account(session: Session, people: Demo) -> None:
    admin: Actor = people.actor("admin")
    patient = accounts.register_patient(
        session, admin, medical_record_number="mrn-t-0100", display_name="New Patient"
    )
    assert isinstance(patient, PatientProfile)
    assert patient.medical_record_number == "MRN-T-0100"

    code = accounts.issue_activation_code(session, admin, patient)
    user = accounts.activate_patient(
        session, code=code, email="New@Example.org", password=NEW_PASSWORD, date_of_birth=None
    )

    assert patient.user_id == user.id
    assert user.email == "new@example.org"
    # The code is single-use.
    with pytest.raises(AccountError):
        accounts.activate_patient(
            session, code=code, email="again@example.org", password=NEW_PASSWORD, date_of_birth=None
        )

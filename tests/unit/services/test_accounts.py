"""Account rules that live in `portal.services.accounts`, whatever door (page, API) calls them."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.access import Actor
from portal.db import set_clock, utcnow
from portal.models import (
    ActivationCode,
    AuditAction,
    AuditEvent,
    AuditOutcome,
    AuthMethod,
    PatientProfile,
    SignInThrottle,
    User,
    UserSession,
)
from portal.services import accounts, sessions, throttle
from portal.services.accounts import FAILED_SIGN_IN, AccountError
from portal.services.credentials import verify_password
from portal.transactions import unit_of_work
from tests.conftest import DEMO_EMAILS, Demo
from tests.support import PASSWORD

LIMITS = throttle.Limits(
    per_account=3, per_address=10, window=timedelta(minutes=15), longest=timedelta(minutes=15)
)
NEW_PASSWORD = "a fresh and rather long passphrase"
URL = "http://portal.test"


def _sign_in(
    session: Session, email: str, password: str, address: str | None = None
) -> accounts.SignIn:
    return accounts.authenticate(
        session, email=email, password=password, limits=LIMITS, client_address=address
    )


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
    for _ in range(LIMITS.per_account - 1):
        _sign_in(session, DEMO_EMAILS["bob"], "wrong password")
    # Act: the failure that reaches the limit, then the right password
    assert _sign_in(session, DEMO_EMAILS["bob"], "wrong password").retry_after is None
    attempt = _sign_in(session, DEMO_EMAILS["bob"], PASSWORD)
    # Assert: a pause of one minute, said as such, and recorded
    assert attempt.user is None
    assert attempt.retry_after == 60
    assert attempt.refusal is not None
    assert "Please wait 1 minute and try again" in attempt.refusal
    assert _last_entry(session).action is AuditAction.SIGN_IN_FAILED
    # Once the pause is over, the right password works again.
    set_clock(lambda: now + timedelta(minutes=1, seconds=1))
    assert _sign_in(session, DEMO_EMAILS["bob"], PASSWORD).user is bob


def test_an_address_without_an_account_is_paused_exactly_like_one_with(session: Session) -> None:
    now = utcnow()
    set_clock(lambda: now)
    answers = {}
    for email in (DEMO_EMAILS["bob"], "nobody-here@example.org"):
        attempts = [_sign_in(session, email, "wrong password") for _ in range(LIMITS.per_account)]
        answers[email] = [(a.refusal, a.retry_after) for a in attempts] + [
            (lambda a: (a.refusal, a.retry_after))(_sign_in(session, email, "wrong password"))
        ]
    real, unknown = answers.values()
    assert real == unknown
    assert real[-1][1] is not None  # both paused


def test_the_pause_grows_but_stays_short_enough_to_outlast(session: Session) -> None:
    now = utcnow()
    keys = throttle.keys_for("someone@example.org", None, LIMITS)
    pauses = []
    for _ in range(LIMITS.per_account + 6):
        throttle.count_failure(session, keys, LIMITS, now)
        pauses.append(throttle.wait_seconds(session, keys, now))
    assert pauses[: LIMITS.per_account - 1] == [None] * (LIMITS.per_account - 1)
    minutes = [(p or 0) // 60 for p in pauses[LIMITS.per_account - 1 :]]
    assert minutes == [1, 2, 4, 8, 15, 15, 15]


def test_one_client_address_failing_over_many_accounts_is_paused(session: Session) -> None:
    now = utcnow()
    set_clock(lambda: now)
    for n in range(LIMITS.per_address):
        _sign_in(session, f"guess{n}@example.org", "wrong password", address="203.0.113.9")
    paused = _sign_in(session, DEMO_EMAILS["bob"], PASSWORD, address="203.0.113.9")
    assert paused.user is None
    assert paused.retry_after is not None
    # Another address is not affected
    assert _sign_in(session, DEMO_EMAILS["bob"], PASSWORD, address="198.51.100.7").user


def test_a_success_forgets_the_failures(session: Session, people: Demo) -> None:
    for _ in range(LIMITS.per_account - 1):
        _sign_in(session, DEMO_EMAILS["bob"], "wrong password")

    _sign_in(session, DEMO_EMAILS["bob"], PASSWORD)

    for _ in range(LIMITS.per_account - 1):
        assert _sign_in(session, DEMO_EMAILS["bob"], "wrong password").retry_after is None


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


def _change_in_unit_of_work(actor: Actor, current: str) -> AccountError | None:
    """A password change as a page runs it: its refusal, after the unit of work kept its
    record."""
    try:
        with unit_of_work() as s:
            accounts.change_password(
                s, actor, current_password=current, new_password=NEW_PASSWORD, limits=LIMITS
            )
    except AccountError as refused:
        return refused
    return None


def test_a_wrong_current_password_is_refused_recorded_and_counted(
    session: Session, people: Demo
) -> None:
    alice = people.user("alice")
    before = alice.password_hash

    refused = _change_in_unit_of_work(people.actor("alice"), "wrong")

    assert refused is not None
    assert (refused.field, refused.message) == (
        "current_password",
        "That is not your current password.",
    )
    session.expire_all()
    assert alice.password_hash == before
    entry = _last_entry(session)
    assert (entry.action, entry.outcome) == (AuditAction.PASSWORD_CHANGE, AuditOutcome.DENIED)
    # Guessing on from an open session pauses it like signing in, and the right one then waits
    for _ in range(LIMITS.per_account - 1):
        _change_in_unit_of_work(people.actor("alice"), "wrong")
    paused = _change_in_unit_of_work(people.actor("alice"), PASSWORD)
    assert paused is not None
    assert paused.message.startswith("Too many attempts")
    session.expire_all()
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
    accounts.change_password(
        session, actor, current_password=PASSWORD, new_password=NEW_PASSWORD, limits=LIMITS
    )
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
        accounts.issue_activation_code(session, people.actor("admin"), alice, portal_url=URL)

    assert refused.value.field is None
    assert _codes(session) == before


def test_an_activation_code_opens_a_new_patients_account(session: Session, people: Demo) -> None:
    admin: Actor = people.actor("admin")
    patient = accounts.register_patient(
        session,
        admin,
        medical_record_number="mrn-t-0100",
        display_name="New Patient",
        contact_email="home@example.org",
    )
    assert isinstance(patient, PatientProfile)
    assert patient.medical_record_number == "MRN-T-0100"

    code = accounts.issue_activation_code(session, admin, patient, portal_url=URL)
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


def test_the_claim_that_reaches_the_limit_pauses_the_key_itself(session: Session) -> None:
    # Counted before the check, and paused in the same statement: no attempt after the
    # limit's is let through, however close behind it comes.
    now = utcnow()
    keys = throttle.keys_for("claims@example.org", "203.0.113.20", LIMITS)
    answers = [throttle.claim(session, keys, LIMITS, now) for _ in range(LIMITS.per_account + 2)]
    assert answers[: LIMITS.per_account] == [None] * LIMITS.per_account
    assert all(wait is not None and wait > 0 for wait in answers[LIMITS.per_account :])
    row = session.get(SignInThrottle, throttle.account_key("claims@example.org"))
    assert row is not None
    assert row.failures == LIMITS.per_account  # a paused key is not claimed again
    # A right answer takes its claim back: the address key is as it was before it
    throttle.release(session, keys)
    address = session.get(SignInThrottle, keys[1][0])
    assert address is not None
    assert address.failures == LIMITS.per_account - 1

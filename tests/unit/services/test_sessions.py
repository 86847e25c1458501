"""`portal.services.sessions`: the one validity rule for a signed-in session, and ending them."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.access import Actor
from portal.db import set_clock, utcnow
from portal.models import AuditEvent, AuthMethod, User, UserSession
from portal.services import sessions
from portal.services.errors import ServiceError
from portal.services.sessions import Status
from tests.conftest import Demo

IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)


def _start(session: Session, user: User) -> tuple[str, UserSession]:
    token = sessions.start(session, user, method=AuthMethod.SESSION, client="Test")
    row = session.scalar(
        select(UserSession).where(UserSession.token_hash == sessions.token_hash(token))
    )
    assert row is not None
    return token, row


def _check(session: Session, token: str) -> sessions.Check:
    # As a new request would: nothing this session cached (the revocations are bulk UPDATEs).
    session.expire_all()
    return sessions.check(session, token, idle=IDLE, absolute=ABSOLUTE)


def _at(moment: datetime) -> None:
    set_clock(lambda: moment)


@pytest.fixture
def t0() -> datetime:
    now = utcnow()
    _at(now)
    return now


def test_a_fresh_session_is_valid_and_names_its_user(
    session: Session, people: Demo, t0: datetime
) -> None:
    bob = people.user("bob")
    token, row = _start(session, bob)

    found = _check(session, token)

    assert (found.status, found.user, found.row) == (Status.VALID, bob, row)


def test_an_unknown_secret_is_invalid(session: Session, t0: datetime) -> None:
    assert _check(session, "not-a-session").status is Status.INVALID


def test_a_revoked_session_is_invalid(session: Session, people: Demo, t0: datetime) -> None:
    token, row = _start(session, people.user("bob"))
    sessions.sign_out(session, dataclasses.replace(people.actor("bob"), session_id=row.id))

    assert _check(session, token).status is Status.INVALID


def test_a_session_of_a_deactivated_user_is_invalid(
    session: Session, people: Demo, t0: datetime
) -> None:
    token, _ = _start(session, people.user("bob"))
    people.user("bob").is_active = False
    session.flush()

    assert _check(session, token).status is Status.INVALID


def test_a_session_unused_for_the_idle_timeout_expires(
    session: Session, people: Demo, t0: datetime
) -> None:
    token, _ = _start(session, people.user("bob"))

    _at(t0 + IDLE)
    assert _check(session, token).status is Status.VALID
    _at(t0 + IDLE + timedelta(seconds=1))
    assert _check(session, token).status is Status.EXPIRED


def test_a_session_in_use_still_expires_at_the_absolute_timeout(
    session: Session, people: Demo, t0: datetime
) -> None:
    token, row = _start(session, people.user("bob"))
    # Used every 20 minutes, so never idle ...
    moment = t0
    while moment + timedelta(minutes=20) <= t0 + ABSOLUTE:
        moment += timedelta(minutes=20)
        _at(moment)
        assert _check(session, token).status is Status.VALID
        sessions.touch(session, row.id)
    session.expire_all()
    # ... but no older than the absolute timeout.
    _at(t0 + ABSOLUTE + timedelta(seconds=1))
    assert _check(session, token).status is Status.EXPIRED


def _audit_count(session: Session) -> int:
    return session.scalar(select(func.count(AuditEvent.id))) or 0


def test_ending_someone_elses_session_by_its_id_is_refused_and_changes_nothing(
    session: Session, people: Demo, t0: datetime
) -> None:
    # Arrange: bob's session, and alice who guesses its id
    token, bobs = _start(session, people.user("bob"))
    entries = _audit_count(session)
    # Act
    with pytest.raises(ServiceError) as refused:
        sessions.end_one(session, people.actor("alice"), bobs.id)
    # Assert
    assert refused.value.field is None
    session.expire_all()
    assert bobs.revoked_at is None
    assert _check(session, token).status is Status.VALID
    assert _audit_count(session) == entries


def test_ending_one_of_ones_own_sessions(session: Session, people: Demo, t0: datetime) -> None:
    token, phone = _start(session, people.user("bob"))
    _, laptop = _start(session, people.user("bob"))
    bob: Actor = dataclasses.replace(people.actor("bob"), session_id=laptop.id)

    sessions.end_one(session, bob, phone.id)

    assert _check(session, token).status is Status.INVALID
    listed = sessions.active_for(session, bob, idle=IDLE, absolute=ABSOLUTE)
    assert [s.id for s in listed] == [laptop.id]
    # A second time, it is already gone.
    with pytest.raises(ServiceError):
        sessions.end_one(session, bob, phone.id)


def test_ending_the_other_sessions_keeps_the_one_in_use(
    session: Session, people: Demo, t0: datetime
) -> None:
    here, laptop = _start(session, people.user("bob"))
    phone, _ = _start(session, people.user("bob"))
    alices, _ = _start(session, people.user("alice"))
    bob = dataclasses.replace(people.actor("bob"), session_id=laptop.id)

    assert sessions.end_others(session, bob) == 1

    assert _check(session, here).status is Status.VALID
    assert _check(session, phone).status is Status.INVALID
    assert _check(session, alices).status is Status.VALID


def test_a_timed_out_session_is_not_listed_as_signed_in(
    session: Session, people: Demo, t0: datetime
) -> None:
    _, old = _start(session, people.user("bob"))
    _at(t0 + IDLE + timedelta(minutes=1))
    _, new = _start(session, people.user("bob"))
    bob: Actor = dataclasses.replace(people.actor("bob"), session_id=new.id)

    listed = sessions.active_for(session, bob, idle=IDLE, absolute=ABSOLUTE)

    assert [s.id for s in listed] == [new.id]

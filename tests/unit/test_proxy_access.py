"""Acting for someone else: a proxy's grant narrows what they read, by scope, by date and by
the rules for minors, in the same scoped statements as every other read (`access.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden, NotFound

from portal import access
from portal.access import Actor, Permission, reader
from portal.db import set_clock
from portal.models import (
    AuditAction,
    AuditEvent,
    Conversation,
    Entity,
    LabResult,
    Message,
    Notification,
    ProxyGrant,
    ProxyRelationship,
    ProxyScope,
    ResultStatus,
    Role,
    Visibility,
)
from portal.services import accounts, labs, messaging, proxies
from portal.services.catalog import BY_CODE
from tests.conftest import SUITE_CLOCK, Demo

#: The day these tests live on: a child born on `born(years)` is that many years old.
TODAY = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
ALL = frozenset(ProxyScope)


def born(years: int) -> date:
    return (
        date(TODAY.year - years, 6, 1) if TODAY.month >= 6 else date(TODAY.year - years - 1, 6, 1)
    )


@pytest.fixture(autouse=True)
def _today() -> Iterator[None]:
    set_clock(lambda: TODAY)
    yield
    set_clock(SUITE_CLOCK)


@dataclass
class Child:
    patient_id: int
    ordinary: LabResult
    confidential: LabResult
    conversation_id: int
    user_id: int


def _result(session: Session, chen: Actor, patient_id: int, code: str) -> LabResult:
    test = BY_CODE[code]
    result = labs.create_result(
        session,
        chen,
        patient_id,
        test_code=test.loinc,
        test_name=test.name,
        data=labs.ResultInput(
            "negative" if not test.units else "5.1",
            test.units,
            test.reference_range,
            ResultStatus.FINAL,
            Visibility.SHARED,
        ),
    )
    if labs.held_version(session, chen, result) is not None:  # a sensitive category waits
        labs.review_and_release(session, chen, result.id)
    return result


def _child(session: Session, people: Demo, years: int) -> Child:
    """A patient of dr.chen, `years` old, with an ordinary result, one in a confidential
    category (the demo's genetic tests: never released by a timer) and a thread."""
    admin, chen = people.actor("admin"), people.actor("dr_chen")
    patient = accounts.register_patient(
        session,
        admin,
        medical_record_number=f"MRN-CHILD-{years}",
        display_name=f"Sam Martin ({years})",
        date_of_birth=born(years),
        contact_email=f"sam{years}@example.org",
    )
    code = accounts.issue_activation_code(session, admin, patient, portal_url="http://portal")
    user = accounts.activate_patient(
        session,
        code=code,
        email=f"sam{years}@example.org",
        password="Demo-Portal-2026!",
        date_of_birth=born(years),
    )
    assert chen.provider_id is not None
    accounts.assign_provider(session, admin, patient_id=patient.id, provider_id=chen.provider_id)
    ordinary = _result(session, chen, patient.id, "2345-7")  # glucose, chemistry
    confidential = _result(session, chen, patient.id, "21636-6")  # BRCA1, genetic
    message = messaging.start_conversation(
        session,
        chen,
        patient_id=patient.id,
        recipient_user_id=user.id,
        subject="Your results",
        body="Both are back.",
    )
    session.flush()
    return Child(patient.id, ordinary, confidential, message.conversation_id, user.id)


def _grant(
    session: Session,
    people: Demo,
    patient_id: int,
    relationship: ProxyRelationship = ProxyRelationship.PARENT,
    scopes: frozenset[ProxyScope] = ALL,
    ends_in: timedelta = timedelta(days=365),
) -> ProxyGrant:
    return proxies.record_grant(
        session,
        people.actor("admin"),
        patient_id,
        people.user("alice"),
        relationship,
        scopes,
        legal_basis="parental responsibility",
        ends_at=TODAY + ends_in,
    )


def _as_proxy(session: Session, people: Demo, patient_id: int) -> Actor:
    return proxies.open_record(session, people.actor("alice"), patient_id)


def _results(session: Session, actor: Actor) -> set[int]:
    stmt = access.RoleScope(actor.role, access.Narrowing.of(actor.acting_for)).scope(
        select(LabResult.id), LabResult
    )
    return set(session.scalars(stmt, reader(actor)))


@pytest.mark.parametrize(("years", "sees_confidential"), [(11, True), (14, False)])
def test_a_parent_reads_a_childs_results_but_never_a_teenagers_confidential_ones(
    session: Session, people: Demo, years: int, sees_confidential: bool
) -> None:
    child = _child(session, people, years)
    _grant(session, people, child.patient_id)

    alice = _as_proxy(session, people, child.patient_id)

    expected = {child.ordinary.id} | ({child.confidential.id} if sees_confidential else set())
    assert _results(session, alice) == expected
    shown = labs.latest_page(session, alice, labs.LabFilter())
    assert {row.result.id for row in shown.rows} == expected
    if not sees_confidential:
        with pytest.raises(NotFound):
            labs.result_history(session, alice, child.confidential.id)
    # The child's own view is whole.
    sam = Actor(child.user_id, Role.PATIENT, patient_id=child.patient_id)
    assert _results(session, sam) == {child.ordinary.id, child.confidential.id}


@pytest.mark.parametrize(("years", "reads_messages"), [(11, True), (14, False)])
def test_a_teenagers_messages_are_never_a_parents_to_read(
    session: Session, people: Demo, years: int, reads_messages: bool
) -> None:
    child = _child(session, people, years)
    _grant(session, people, child.patient_id)
    alice = _as_proxy(session, people, child.patient_id)

    if reads_messages:
        page = messaging.inbox(session, alice)
        assert [t.conversation.id for t in page.rows] == [child.conversation_id]
        return
    with pytest.raises(NotFound):  # outside the grant, as for anything not theirs
        messaging.inbox(session, alice)
    with pytest.raises(NotFound):
        access.get_or_404(session, Conversation, child.conversation_id, alice)
    assert not access.can(alice, Permission.MESSAGE_SEND)


def test_a_parents_grant_ends_by_itself_at_eighteen(session: Session, people: Demo) -> None:
    child = _child(session, people, 17)
    _grant(session, people, child.patient_id)
    assert _as_proxy(session, people, child.patient_id).acting_for is not None

    # The day after the 18th birthday, with no job having run: decided at the request.
    set_clock(
        lambda: (
            datetime.combine(born(17).replace(year=born(17).year + 18), datetime.min.time(), UTC)
            + timedelta(hours=9)
        )
    )

    with pytest.raises(NotFound):
        _as_proxy(session, people, child.patient_id)
    held = proxies.held_records(session, people.actor("alice"))
    assert child.patient_id not in {h.patient_id for h in held}


def test_an_expired_or_ended_grant_opens_nothing(session: Session, people: Demo) -> None:
    child = _child(session, people, 8)
    grant = _grant(session, people, child.patient_id, ends_in=timedelta(days=3))
    assert _as_proxy(session, people, child.patient_id)

    set_clock(lambda: TODAY + timedelta(days=3))
    with pytest.raises(NotFound):
        _as_proxy(session, people, child.patient_id)

    set_clock(lambda: TODAY)
    proxies.end(session, people.actor("alice"), grant.id, "no longer needed")
    with pytest.raises(NotFound):
        _as_proxy(session, people, child.patient_id)


def test_a_caregiver_reads_only_what_the_grant_names(session: Session, people: Demo) -> None:
    child = _child(session, people, 40)  # an adult: a caregiver's grant, no minors' rules
    _grant(
        session,
        people,
        child.patient_id,
        ProxyRelationship.CAREGIVER,
        frozenset({ProxyScope.APPOINTMENTS}),
    )
    carer = _as_proxy(session, people, child.patient_id)

    assert _results(session, carer) == set()
    with pytest.raises(NotFound):
        labs.result_history(session, carer, child.ordinary.id)
    with pytest.raises(NotFound):
        access.get_or_404(session, Conversation, child.conversation_id, carer)
    assert access.can(carer, Permission.APPOINTMENT_BOOK)
    assert not access.can(carer, Permission.LAB_RESULT_READ)


def test_outside_the_grant_is_a_404_and_the_account_stays_the_patients(
    session: Session, people: Demo
) -> None:
    child = _child(session, people, 8)
    _grant(session, people, child.patient_id)
    alice = _as_proxy(session, people, child.patient_id)

    with pytest.raises(NotFound):
        access.require(alice, Permission.OWN_ACCOUNT)
    with pytest.raises(Forbidden):  # not acting for anyone: the role's own 403
        access.require(people.actor("alice"), Permission.LAB_RESULT_WRITE)
    # Someone else's record (bob's) is not opened by holding a grant for Sam.
    with pytest.raises(NotFound):
        _as_proxy(session, people, people.user("bob").patient.id)
    # Neither person's notifications show while acting for someone else.
    stmt = access.RoleScope(alice.role, access.Narrowing.of(alice.acting_for)).own(
        select(Notification.id)
    )
    assert list(session.scalars(stmt, reader(alice))) == []


def test_what_a_proxy_does_is_recorded_as_the_proxys_naming_the_grant(
    session: Session, people: Demo
) -> None:
    child = _child(session, people, 8)
    grant = _grant(session, people, child.patient_id)
    alice = _as_proxy(session, people, child.patient_id)

    sent = messaging.reply(session, alice, child.conversation_id, body="Thank you, doctor.")

    entry = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == AuditAction.SEND)
        .order_by(AuditEvent.id.desc())
    ).first()
    assert entry is not None
    assert (entry.actor_id, entry.patient_id, entry.entity_type) == (
        people.user("alice").id,
        child.patient_id,
        Entity.MESSAGE,
    )
    assert f'"proxy_grant":{grant.id}' in entry.detail
    assert sent.sender_id == people.user("alice").id
    assert session.get(Message, sent.id) is not None


def test_granting_needs_a_legal_basis_and_a_second_person(session: Session, people: Demo) -> None:
    child = _child(session, people, 8)
    with pytest.raises(proxies.ProxyError):
        proxies.record_grant(
            session,
            people.actor("admin"),
            child.patient_id,
            people.user("alice"),
            ProxyRelationship.PARENT,
            ALL,
            legal_basis="  ",
            ends_at=TODAY + timedelta(days=30),
        )
    with pytest.raises(Forbidden):
        proxies.record_grant(
            session,
            people.actor("dr_chen"),
            child.patient_id,
            people.user("alice"),
            ProxyRelationship.PARENT,
            ALL,
            legal_basis="parental responsibility",
            ends_at=TODAY + timedelta(days=30),
        )


def test_who_holds_access_is_read_like_the_rest_of_the_record(
    session: Session, people: Demo
) -> None:
    # The teen sees who holds access to their record; their clinician may; nobody else.
    child = _child(session, people, 14)
    grant = _grant(session, people, child.patient_id)
    sam = Actor(child.user_id, Role.PATIENT, patient_id=child.patient_id)

    assert [(g.id, u.id) for g, u in proxies.grants_on_my_record(session, sam)] == [
        (grant.id, people.user("alice").id)
    ]
    assert proxies.grants_on_my_record(session, people.actor("bob")) == []
    assert access.get_or_404(session, ProxyGrant, grant.id, people.actor("dr_chen")) is grant
    for name in ("bob", "dr_okafor", "admin"):
        with pytest.raises(NotFound):
            access.get_or_404(session, ProxyGrant, grant.id, people.actor(name))
    # The proxy, acting for Sam, does not read the grants on Sam's record.
    with pytest.raises(NotFound):
        access.get_or_404(
            session, ProxyGrant, grant.id, _as_proxy(session, people, child.patient_id)
        )

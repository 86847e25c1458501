"""The access policy: each patient-owned model, read by two patients and two providers."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import exists, func, select, text
from sqlalchemy.orm import Session, aliased
from werkzeug.exceptions import Forbidden, NotFound

from portal import access
from portal.access import Actor, Permission, RoleScope, UnscopedQueryError, reader
from portal.db import Base
from portal.models import (
    Attachment,
    LabResult,
    LabResultVersion,
    Notification,
    PatientOwned,
    PatientProfile,
    PlanStatus,
    ProviderProfile,
    ProxyGrant,
    ResultStatus,
    Role,
    TreatmentPlan,
    TreatmentPlanVersion,
    User,
    Visibility,
)
from tests.conftest import Demo

OWNED = sorted(
    (m.class_ for m in Base.registry.mappers if issubclass(m.class_, PatientOwned)),
    key=lambda c: c.__name__,
)


#: The demo data gives alice and bob rows of each of these; proxy grants are on other
#: patients' records (a child's: tests/unit/test_proxy_access.py reads them the same way).
WITH_DEMO_ROWS = [m for m in OWNED if m is not ProxyGrant]


def _patient_id(people, name: str) -> int:
    return people.user(name).patient.id


def _read(session: Session, actor: Actor, stmt: Any, model: Any) -> Any:
    """`stmt` restricted to the rows of `model` the actor may read, run as the actor."""
    return session.scalars(RoleScope(actor.role).scope(stmt, model), reader(actor))


def test_every_patient_owned_table_is_covered() -> None:
    names = {c.__name__ for c in OWNED}
    assert {"LabResult", "LabResultVersion", "TreatmentPlan", "Message", "Appointment"} <= names


@pytest.mark.parametrize("model", WITH_DEMO_ROWS, ids=lambda m: m.__name__)
def test_a_patient_reads_only_their_own_rows(session, people, model) -> None:
    alice = people.actor("alice")
    rows = _read(session, alice, select(model), model).all()
    assert rows, f"the demo data should give alice some {model.__name__} rows"
    assert {r.patient_id for r in rows} == {_patient_id(people, "alice")}


@pytest.mark.parametrize("model", WITH_DEMO_ROWS, ids=lambda m: m.__name__)
def test_a_provider_reads_only_assigned_patients_rows(session, people, model) -> None:
    chen_rows = _read(session, people.actor("dr_chen"), select(model), model).all()
    okafor_rows = _read(session, people.actor("dr_okafor"), select(model), model).all()
    chen_patients = {_patient_id(people, "alice"), _patient_id(people, "bob")}
    # Sam (dr_chen's patient too) has rows of some kinds only: the demo gives him results.
    assert (
        chen_patients
        <= {r.patient_id for r in chen_rows}
        <= chen_patients | {_patient_id(people, "sam")}
    )
    assert chen_patients.isdisjoint({r.patient_id for r in okafor_rows})
    assert okafor_rows


@pytest.mark.parametrize("model", OWNED, ids=lambda m: m.__name__)
def test_an_admin_reads_no_clinical_rows(session, people, model) -> None:
    rows = _read(session, people.actor("admin"), select(model), model).all()
    assert rows == []


@pytest.mark.parametrize("model", WITH_DEMO_ROWS, ids=lambda m: m.__name__)
def test_a_record_outside_scope_is_not_found(session, people, model) -> None:
    bobs = _read(session, people.actor("bob"), select(model).limit(1), model).first()
    assert bobs is not None
    for name in ("alice", "dr_okafor", "admin"):
        with pytest.raises(NotFound):
            access.get_or_404(session, model, bobs.id, people.actor(name))
    assert access.get_or_404(session, model, bobs.id, people.actor("dr_chen")) is bobs


def test_an_unscoped_read_of_patient_records_is_refused(session) -> None:
    with pytest.raises(UnscopedQueryError):
        session.scalars(select(LabResultVersion)).all()


# --- The fail-closed guard: any statement that reads a guarded table, however it reads it ---

HBA1C = "4548-4"

#: Statements that read guarded tables without returning their rows as entities: who had a
#: test, how many results exist, which users have notifications. Each must be refused unscoped.
UNSCOPED_READS: dict[str, Any] = {
    "names joined to a test": lambda: (
        select(PatientProfile.display_name)
        .join(LabResult, LabResult.patient_id == PatientProfile.id)
        .where(LabResult.test_code == HBA1C)
    ),
    "a count of versions": lambda: select(func.count()).select_from(LabResultVersion),
    "patient profiles": lambda: select(PatientProfile),
    "a patient's name": lambda: select(PatientProfile.display_name),
    "patients through an alias": lambda: select(aliased(PatientProfile).medical_record_number),
    "an mrn in a where clause": lambda: select(User.email).where(
        User.id == PatientProfile.user_id, PatientProfile.medical_record_number == "MRN-100001"
    ),
    "notifications": lambda: select(Notification),
    "notification text": lambda: select(Notification.text),
    "a subquery on notifications": lambda: select(User.email).where(
        User.id.in_(select(Notification.user_id).where(Notification.text.like("%HbA1c%")))
    ),
    "an exists on results": lambda: select(User.email).where(
        exists().where(LabResult.ordered_by_id == User.id, LabResult.test_code == HBA1C)
    ),
    "a cte of attachments": lambda: select(User.email).where(
        User.id.in_(select(Attachment.uploaded_by_id).cte().select())
    ),
    "sql text": lambda: text("SELECT display_name FROM Patient_Profile"),
    "rows from sql text": lambda: select(PatientProfile).from_statement(
        text("SELECT * FROM patient_profile")
    ),
}


@pytest.mark.parametrize("build", UNSCOPED_READS.values(), ids=list(UNSCOPED_READS))
def test_a_statement_that_reads_a_guarded_table_in_any_way_is_refused(session, build) -> None:
    stmt = build()
    with pytest.raises(UnscopedQueryError):
        session.execute(stmt).all()
    # The verdict is kept for the statement object; the same object is refused again.
    with pytest.raises(UnscopedQueryError):
        session.execute(stmt).all()


def test_session_get_of_a_patient_profile_is_refused(session, people) -> None:
    carol_id = _patient_id(people, "carol")
    session.expunge_all()  # so `get` has to ask the database
    with pytest.raises(UnscopedQueryError):
        session.get(PatientProfile, carol_id)


def test_statements_on_unguarded_tables_run(session) -> None:
    assert session.scalar(select(func.count()).select_from(User))
    assert session.scalar(text("SELECT count(*) FROM user_account WHERE role = 'patient'"))
    session.execute(text("CREATE TEMP VIEW names AS SELECT display_name FROM patient_profile"))
    assert session.scalars(
        select(ProviderProfile).join(User, User.id == ProviderProfile.user_id)
    ).all()


def test_the_same_reads_run_through_their_scopes(session, people) -> None:
    chen, alice = people.actor("dr_chen"), people.actor("alice")
    found = set(_read(session, chen, UNSCOPED_READS["names joined to a test"](), LabResult))
    assert "Alice Martin" in found
    assert found <= {"Alice Martin", "Bob Okonkwo", "Sam Martin"}  # dr_chen's patients only
    versions = UNSCOPED_READS["a count of versions"]()
    assert _read(session, alice, versions, LabResultVersion).one()
    names = RoleScope(chen.role).patients(UNSCOPED_READS["a patient's name"]())
    assert set(session.scalars(names, reader(chen))) == {
        "Alice Martin",
        "Bob Okonkwo",
        "Sam Martin",
    }
    assert access.get_or_404(session, PatientProfile, _patient_id(people, "bob"), chen)
    assert session.scalars(access.unscoped(select(PatientProfile), "a job")).all()


def test_notifications_are_read_only_by_their_recipient(session, people) -> None:
    alice, chen = people.actor("alice"), people.actor("dr_chen")
    mine = session.scalars(RoleScope(alice.role).own(select(Notification)), reader(alice)).all()
    assert mine, "the demo data should give alice notifications"
    assert {n.user_id for n in mine} == {alice.user_id}
    theirs = session.scalars(RoleScope(chen.role).own(select(Notification)), reader(chen)).all()
    assert not {n.id for n in mine} & {n.id for n in theirs}


# --- scoped(): a statement built once per role and shape, never once per request ---


def _results(rs: RoleScope, *shape: Any) -> Any:
    """A module-level builder whose statement's form ignores its shape."""
    return rs.scope(select(LabResult).order_by(LabResult.id), LabResult)


def test_one_scoped_statement_serves_every_reader_of_a_role_with_their_own_rows(
    session, people
) -> None:
    alice, bob, chen = people.actor("alice"), people.actor("bob"), people.actor("dr_chen")
    stmt = access.scoped(_results, alice)
    assert access.scoped(_results, bob) is stmt  # built once for the patient role
    assert access.scoped(_results, chen) is not stmt
    assert access.scoped(_results, alice, True) is not stmt  # another shape, another statement
    alices = {r.patient_id for r in session.scalars(stmt, reader(alice))}
    bobs = {r.patient_id for r in session.scalars(stmt, reader(bob))}
    assert alices == {alice.patient_id}
    assert bobs == {bob.patient_id}


def test_scoped_accepts_booleans_none_enum_members_and_classes_as_shape(people) -> None:
    shape = (False, None, Role.PATIENT, LabResult)
    stmt = access.scoped(_results, people.actor("alice"), *shape)
    assert access.scoped(_results, people.actor("bob"), *shape) is stmt


def test_scoped_refuses_a_lambda_builder(people) -> None:
    # A lambda is a new object on every call: as a cache key it would grow without bound.
    built = len(access._BUILT)
    with pytest.raises(TypeError, match="module-level builder"):
        access.scoped(lambda rs: _results(rs), people.actor("alice"))
    assert len(access._BUILT) == built


def test_scoped_refuses_a_closure(people) -> None:
    limit = 5  # a request value a closure would capture, and the cache would keep

    def recent(rs: RoleScope) -> Any:
        return _results(rs).limit(limit)

    built = len(access._BUILT)
    with pytest.raises(TypeError, match="module-level builder"):
        access.scoped(recent, people.actor("alice"))
    assert len(access._BUILT) == built


@pytest.mark.parametrize("value", [20, 0, "2823-3", ""], ids=repr)
def test_scoped_refuses_an_int_or_a_str_as_shape(people, value) -> None:
    # A limit or a test code is a request value: one cache entry per value, without bound.
    built = len(access._BUILT)
    with pytest.raises(TypeError, match="shape"):
        access.scoped(_results, people.actor("alice"), True, value)
    assert len(access._BUILT) == built


# --- What a patient sees of their own records: each rule of PATIENT_FILTERS on its own ---


def _released(v: LabResultVersion) -> bool:
    return v.visibility is Visibility.SHARED and v.released_at is not None


def _may_see(row: Any, versions: dict[int, LabResultVersion]) -> bool:
    """The patient-visibility rules, said again independently of `access.PATIENT_FILTERS`."""
    match row:
        case LabResultVersion():
            return _released(row)
        case LabResult():
            return any(_released(v) for v in versions.values() if v.lab_result_id == row.id)
        case TreatmentPlan() | TreatmentPlanVersion():
            return row.status is not PlanStatus.DRAFT
        case Attachment():
            version_id = row.lab_result_version_id
            return version_id is None or _released(versions[version_id])
    raise AssertionError(f"no rule for {type(row).__name__}")


def _all_of(session: Session, model: Any, patient_id: int) -> list[Any]:
    stmt = select(model).where(model.patient_id == patient_id)
    return list(session.scalars(access.unscoped(stmt, "test: everything, to compare")))


@pytest.fixture
def unreleased_attachment(session: Session, people: Demo) -> Attachment:
    """A report attached to a version alice may not see yet (the demo has none)."""
    alice_id = _patient_id(people, "alice")
    hidden = next(v for v in _all_of(session, LabResultVersion, alice_id) if not _released(v))
    attachment = Attachment(
        patient_id=alice_id,
        lab_result_version_id=hidden.id,
        filename="unreleased-report.pdf",
        content_type="application/pdf",
        size_bytes=3,
        sha256="0" * 64,
        ciphertext=b"\x00\x01\x02",
        uploaded_by_id=people.user("dr_chen").id,
    )
    session.add(attachment)
    session.flush()
    return attachment


#: Listed here, not taken from PATIENT_FILTERS: a rule deleted there must fail its test below.
PATIENT_FILTERED = [LabResult, LabResultVersion, TreatmentPlan, TreatmentPlanVersion, Attachment]


def test_every_patient_visibility_rule_has_its_test() -> None:
    assert set(access.PATIENT_FILTERS) <= set(PATIENT_FILTERED)


@pytest.mark.parametrize("model", PATIENT_FILTERED, ids=lambda m: m.__name__)
@pytest.mark.usefixtures("unreleased_attachment")
def test_a_patient_reads_exactly_what_each_visibility_rule_allows(session, people, model) -> None:
    # Arrange: all of alice's rows, and which of them she may see by the rules said above.
    alice = people.actor("alice")
    alice_id = _patient_id(people, "alice")
    versions = {v.id: v for v in _all_of(session, LabResultVersion, alice_id)}
    rows = _all_of(session, model, alice_id)
    allowed = {r.id for r in rows if _may_see(r, versions)}
    hidden = {r.id for r in rows} - allowed
    assert hidden, f"alice needs a {model.__name__} she may not see, or this proves nothing"
    # Act
    listed = {r.id for r in _read(session, alice, select(model), model)}
    # Assert: a list shows exactly the allowed rows, and a hidden one is missing by id too.
    assert listed == allowed
    for record_id in hidden:
        with pytest.raises(NotFound):
            access.get_or_404(session, model, record_id, alice)


def test_a_patient_never_reads_provider_only_unreleased_or_draft_content(session, people) -> None:
    alice = people.actor("alice")
    versions = _read(session, alice, select(LabResultVersion), LabResultVersion).all()
    assert all(v.visibility is Visibility.SHARED and v.released_at for v in versions)
    assert all(v.status is not ResultStatus.PRELIMINARY for v in versions)
    plans = _read(session, alice, select(TreatmentPlan), TreatmentPlan).all()
    assert plans
    assert all(p.status is not PlanStatus.DRAFT for p in plans)
    plan_versions = _read(session, alice, select(TreatmentPlanVersion), TreatmentPlanVersion).all()
    assert all(v.status is not PlanStatus.DRAFT for v in plan_versions)
    # ...while the provider of the same patient does see them.
    alices = select(LabResultVersion).where(
        LabResultVersion.patient_id == _patient_id(people, "alice")
    )
    chen_versions = _read(session, people.actor("dr_chen"), alices, LabResultVersion).all()
    assert any(v.visibility is Visibility.PROVIDER_ONLY for v in chen_versions)
    assert any(v.status is ResultStatus.PRELIMINARY for v in chen_versions)


def test_patients_visible_to_each_role(session, people) -> None:
    def names(actor: Actor) -> set[str]:
        stmt = RoleScope(actor.role).patients(select(PatientProfile.display_name))
        return set(session.scalars(stmt, reader(actor)))

    assert names(people.actor("alice")) == {"Alice Martin"}
    assert names(people.actor("dr_chen")) == {"Alice Martin", "Bob Okonkwo", "Sam Martin"}
    assert "Alice Martin" not in names(people.actor("dr_okafor"))
    assert {"Alice Martin", "Bob Okonkwo", "Carol Jensen"} <= names(people.actor("admin"))


def test_an_unassigned_provider_loses_access_at_once(session, people) -> None:
    from portal.services import accounts

    alice_id = _patient_id(people, "alice")
    chen = people.actor("dr_chen")
    accounts.unassign_provider(
        session, people.actor("admin"), patient_id=alice_id, provider_id=chen.provider_id
    )
    with pytest.raises(NotFound):
        access.get_or_404(session, PatientProfile, alice_id, chen)


@pytest.mark.parametrize(
    ("role", "permission", "allowed"),
    [
        (Role.PATIENT, Permission.LAB_RESULT_WRITE, False),
        (Role.PATIENT, Permission.PLAN_ACKNOWLEDGE, True),
        (Role.PROVIDER, Permission.LAB_RESULT_WRITE, True),
        (Role.PROVIDER, Permission.AUDIT_READ, False),
        (Role.ADMIN, Permission.AUDIT_READ, True),
        (Role.ADMIN, Permission.LAB_RESULT_WRITE, False),
    ],
)
def test_role_gates(role: Role, permission: Permission, allowed: bool) -> None:
    actor = Actor(user_id=1, role=role)
    if allowed:
        access.require(actor, permission)
    else:
        with pytest.raises(Forbidden):
            access.require(actor, permission)

"""The access policy: each patient-owned model, read by two patients and two providers."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from werkzeug.exceptions import Forbidden, NotFound

from portal import access
from portal.access import Actor, Permission, UnscopedQueryError
from portal.db import Base
from portal.models import (
    LabResultVersion,
    PatientOwned,
    PatientProfile,
    PlanStatus,
    ResultStatus,
    Role,
    TreatmentPlan,
    TreatmentPlanVersion,
    Visibility,
)

OWNED = sorted(
    (m.class_ for m in Base.registry.mappers if issubclass(m.class_, PatientOwned)),
    key=lambda c: c.__name__,
)


def _patient_id(people, name: str) -> int:
    return people.user(name).patient.id


def test_every_patient_owned_table_is_covered() -> None:
    names = {c.__name__ for c in OWNED}
    assert {"LabResult", "LabResultVersion", "TreatmentPlan", "Message", "Appointment"} <= names


@pytest.mark.parametrize("model", OWNED, ids=lambda m: m.__name__)
def test_a_patient_reads_only_their_own_rows(session, people, model) -> None:
    alice = people.actor("alice")
    rows = session.scalars(access.scope(select(model), model, alice)).all()
    assert rows, f"the demo data should give alice some {model.__name__} rows"
    assert {r.patient_id for r in rows} == {_patient_id(people, "alice")}


@pytest.mark.parametrize("model", OWNED, ids=lambda m: m.__name__)
def test_a_provider_reads_only_assigned_patients_rows(session, people, model) -> None:
    chen_rows = session.scalars(access.scope(select(model), model, people.actor("dr_chen"))).all()
    okafor_rows = session.scalars(
        access.scope(select(model), model, people.actor("dr_okafor"))
    ).all()
    chen_patients = {_patient_id(people, "alice"), _patient_id(people, "bob")}
    assert {r.patient_id for r in chen_rows} == chen_patients
    assert chen_patients.isdisjoint({r.patient_id for r in okafor_rows})
    assert okafor_rows


@pytest.mark.parametrize("model", OWNED, ids=lambda m: m.__name__)
def test_an_admin_reads_no_clinical_rows(session, people, model) -> None:
    rows = session.scalars(access.scope(select(model), model, people.actor("admin"))).all()
    assert rows == []


@pytest.mark.parametrize("model", OWNED, ids=lambda m: m.__name__)
def test_a_record_outside_scope_is_not_found(session, people, model) -> None:
    bobs = session.scalars(access.scope(select(model), model, people.actor("bob")).limit(1)).first()
    assert bobs is not None
    for name in ("alice", "dr_okafor", "admin"):
        with pytest.raises(NotFound):
            access.get_or_404(session, model, bobs.id, people.actor(name))
    assert access.get_or_404(session, model, bobs.id, people.actor("dr_chen")) is bobs


def test_an_unscoped_read_of_patient_records_is_refused(session) -> None:
    with pytest.raises(UnscopedQueryError):
        session.scalars(select(LabResultVersion)).all()


def test_a_patient_never_reads_provider_only_unreleased_or_draft_content(session, people) -> None:
    alice = people.actor("alice")
    versions = session.scalars(
        access.scope(select(LabResultVersion), LabResultVersion, alice)
    ).all()
    assert all(v.visibility is Visibility.SHARED and v.released_at for v in versions)
    assert all(v.status is not ResultStatus.PRELIMINARY for v in versions)
    plans = session.scalars(access.scope(select(TreatmentPlan), TreatmentPlan, alice)).all()
    assert plans
    assert all(p.status is not PlanStatus.DRAFT for p in plans)
    plan_versions = session.scalars(
        access.scope(select(TreatmentPlanVersion), TreatmentPlanVersion, alice)
    ).all()
    assert all(v.status is not PlanStatus.DRAFT for v in plan_versions)
    # ...while the provider of the same patient does see them.
    chen_versions = session.scalars(
        access.scope(
            select(LabResultVersion).where(
                LabResultVersion.patient_id == _patient_id(people, "alice")
            ),
            LabResultVersion,
            people.actor("dr_chen"),
        )
    ).all()
    assert any(v.visibility is Visibility.PROVIDER_ONLY for v in chen_versions)
    assert any(v.status is ResultStatus.PRELIMINARY for v in chen_versions)


def test_patients_visible_to_each_role(session, people) -> None:
    def names(actor: Actor) -> set[str]:
        stmt = access.scope_patients(select(PatientProfile.display_name), actor)
        return set(session.scalars(stmt))

    assert names(people.actor("alice")) == {"Alice Martin"}
    assert names(people.actor("dr_chen")) == {"Alice Martin", "Bob Okonkwo"}
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

"""The demo data: the contract's accounts, and a bulk generator for benchmarks."""

from __future__ import annotations

from sqlalchemy import func, select

from portal import demo
from portal.access import unscoped
from portal.models import LabResult, PatientProfile, Role, User
from tests.support import PASSWORD


def test_demo_accounts_match_the_contract(session) -> None:
    roles = dict(session.execute(select(User.email, User.role)).all())
    assert roles["alice@example.org"] is Role.PATIENT
    assert roles["bob@example.org"] is Role.PATIENT
    assert roles["dr.chen@example.org"] is Role.PROVIDER
    assert roles["dr.okafor@example.org"] is Role.PROVIDER
    assert roles["admin@example.org"] is Role.ADMIN
    assert demo.PASSWORD == PASSWORD


def test_bulk_generation_adds_patients_with_results(session) -> None:
    patients = unscoped(select(func.count()).select_from(PatientProfile), "test count")
    before = session.scalar(patients)
    demo.seed_bulk(session, patients=30, labs_per_patient=4)
    after = session.scalar(patients)
    results = session.scalar(
        unscoped(
            select(func.count())
            .select_from(LabResult)
            .join(PatientProfile, PatientProfile.id == LabResult.patient_id)
            .where(PatientProfile.medical_record_number.like("GEN-%")),
            "test count",
        )
    )
    assert after - before == 30
    assert results == 120

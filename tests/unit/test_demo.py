"""The demo data: the contract's accounts, and a bulk generator for benchmarks."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import func, select

from portal import demo
from portal.access import unscoped
from portal.models import LabResult, PatientProfile, ResultStatus, Role, User, Visibility
from portal.services import labs
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


def test_bulk_rows_read_back_as_the_models_write_them(session, people) -> None:  # type: ignore[no-untyped-def]
    # The bulk rows skip the ORM: they must read back as the services' own rows would (UTC
    # times, enum members, each version linked to its result), in the lists' order.
    demo.seed_bulk(session, patients=4, labs_per_patient=3, okafor_every=1)
    okafor = people.actor("dr_okafor")
    newest = unscoped(select(func.max(PatientProfile.id)), "test: newest generated patient")
    patient_id = session.scalar(newest)
    rows = labs.list_latest(session, okafor, patient_id=patient_id, limit=10)
    assert len(rows) == 3
    times = [row.result.collected_at for row in rows]
    assert times == sorted(times, reverse=True)
    assert times[0].tzinfo is UTC
    for row in rows:
        assert row.version.lab_result_id == row.result.id
        assert row.version.status is ResultStatus.FINAL
        assert row.version.visibility is Visibility.SHARED
        assert row.version.released_at == row.result.shared_at
        assert row.version.flag is labs.compute_flag(
            row.version.numeric_value, row.version.reference_low, row.version.reference_high
        )

"""Demo data (CONTRACT §4): the demo accounts and realistic records, made through the services.

The services read the clock, so each step runs with the clock set to when it "happened":
the history (versions, audit entries, notifications) is exactly what real use would leave.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from portal.access import Actor, unscoped
from portal.audit import chain
from portal.db import get_clock, set_clock, utcnow
from portal.models import (
    AppointmentStatus,
    CareAssignment,
    LabResult,
    LabResultVersion,
    PatientProfile,
    ReleaseMode,
    ReleasePolicy,
    ResultStatus,
    Role,
    User,
    Visibility,
)
from portal.services import accounts, appointments, attachments, labs, messaging, plans
from portal.services.catalog import BY_CODE, CATALOG, TestDefinition
from portal.transactions import unit_of_work

PASSWORD = "Demo-Portal-2026!"  # noqa: S105  (the public demo password, CONTRACT §4)
MINIMAL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def has_accounts(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(User)))


@contextmanager
def at(moment: datetime) -> Iterator[None]:
    """Make records as of `moment`, then give the clock back as it was (a test's pinned clock
    stays pinned once the demo is seeded)."""
    previous = get_clock()
    set_clock(lambda: moment)
    try:
        yield
    finally:
        set_clock(previous)


def _value(test: TestDefinition, rng: random.Random, abnormal: bool = False) -> str:
    low = test.low if test.low is not None else (test.high or 100) * 0.5
    high = test.high if test.high is not None else low * 2
    value = rng.uniform(high * 1.04, high * 1.12) if abnormal else rng.uniform(low, high)
    digits = 0 if high >= 100 else 1
    return f"{value:.{digits}f}"


def _publish(
    session: Session,
    provider: Actor,
    patient_id: int,
    code: str,
    value: str,
    *,
    status: ResultStatus = ResultStatus.FINAL,
    visibility: Visibility = Visibility.SHARED,
) -> LabResult:
    test = BY_CODE[code]
    return labs.create_result(
        session,
        provider,
        patient_id,
        test_code=test.loinc,
        test_name=test.name,
        data=labs.ResultInput(value, test.units, test.reference_range, status, visibility),
    )


def _patient_history(
    session: Session, chen: Actor, patient: PatientProfile, rng: random.Random, now: datetime
) -> None:
    """Two years of results, a correction, plans, a thread and visits for one demo patient."""
    pid = patient.id
    for months_ago, abnormal in ((18, False), (12, True), (6, True), (1, False)):
        with at(now - timedelta(days=30 * months_ago)):
            for code in ("4548-4", "2093-3", "2085-9", "13457-7", "2571-8"):
                _publish(session, chen, pid, code, _value(BY_CODE[code], rng, abnormal))
    with at(now - timedelta(days=20)):
        for test in (t for t in CATALOG if t.panel == "CBC"):
            _publish(session, chen, pid, test.loinc, _value(test, rng, test.loinc == "718-7"))
        potassium = _publish(session, chen, pid, "2823-3", "6.8")
    with at(now - timedelta(days=19)):
        labs.add_version(
            session,
            chen,
            potassium.id,
            labs.ResultInput("4.2", "mmol/L", "3.5-5.1", ResultStatus.CORRECTED),
            reason="The first sample was haemolysed, which raises potassium falsely. "
            "A repeat sample measured 4.2 mmol/L.",
        )
    with at(now - timedelta(days=3)):
        tsh = _publish(session, chen, pid, "3016-3", "2.1")
        version = session.scalar(
            unscoped(
                select(LabResultVersion).where(LabResultVersion.lab_result_id == tsh.id),
                "demo seed",
            )
        )
        assert version is not None
        row = attachments.build(
            attachments.Upload("tsh-report.pdf", MINIMAL_PDF),
            patient_id=pid,
            uploaded_by_id=chen.user_id,
        )
        row.lab_result_version_id = version.id
        session.add(row)
        _publish(session, chen, pid, "2160-0", "1.1", visibility=Visibility.PROVIDER_ONLY)
        _publish(session, chen, pid, "2345-7", "104", status=ResultStatus.PRELIMINARY)
    with at(now - timedelta(days=1)):
        _publish(session, chen, pid, "21636-6", "No pathogenic variant detected")

    with at(now - timedelta(days=420)):
        old = plans.create_draft(
            session,
            chen,
            pid,
            plans.PlanInput(
                "Blood pressure: lifestyle changes",
                "Reduce salt to under 5 g a day.\nWalk 30 minutes on most days.\n"
                "Check blood pressure at home twice a week and bring the readings.",
                (now - timedelta(days=420)).date(),
                (now - timedelta(days=240)).date(),
            ),
        )
        plans.activate(session, chen, old.id)
    with at(now - timedelta(days=200)):
        current = plans.create_draft(
            session,
            chen,
            pid,
            plans.PlanInput(
                "Type 2 diabetes: metformin and diet",
                "Metformin 500 mg twice a day with meals.\n"
                "See the dietitian within a month.\nHbA1c every 3 months.",
                (now - timedelta(days=200)).date(),
                None,
            ),
        )
        plans.activate(session, chen, current.id)
    if patient.user_id is not None:
        me = Actor(patient.user_id, Role.PATIENT, patient_id=pid)
        with at(now - timedelta(days=199)):
            plans.acknowledge(session, me, current.id)
    with at(now - timedelta(days=14)):
        plans.revise(
            session,
            chen,
            current.id,
            plans.PlanInput(
                "Type 2 diabetes: metformin and diet",
                "Metformin 1000 mg twice a day with meals (increased from 500 mg).\n"
                "See the dietitian within a month.\nHbA1c every 3 months.",
                (now - timedelta(days=200)).date(),
                None,
            ),
            note="Dose increased after the last HbA1c.",
        )
    with at(now - timedelta(days=5)):
        plans.create_draft(
            session, chen, pid, plans.PlanInput("Draft: cholesterol follow-up", "Not yet agreed.")
        )

    if patient.user_id is not None:
        me = Actor(patient.user_id, Role.PATIENT, patient_id=pid)
        with at(now - timedelta(days=6)):
            first = messaging.start_conversation(
                session,
                me,
                patient_id=pid,
                recipient_user_id=chen.user_id,
                subject="Question about my cholesterol results",
                body="Hello Dr Chen, my LDL was flagged high. Should I change anything before "
                "our next appointment?",
            )
        with at(now - timedelta(days=5, hours=20)):
            messaging.mark_thread_read(session, chen, first.conversation_id)
            messaging.reply(
                session,
                chen,
                first.conversation_id,
                body="Thank you for asking. Keep taking your medicine as planned and cut down "
                "on fried food. We will talk about a statin at your next visit.",
            )

    chen_provider = chen.provider_id
    assert chen_provider is not None
    for days, hour, status in (
        (-90, 10, AppointmentStatus.COMPLETED),
        (-30, 14, AppointmentStatus.COMPLETED),
        (9, 9, None),
        (16, 15, None),
    ):
        day = (now + timedelta(days=days)).date()
        while day.weekday() >= 5:
            day += timedelta(days=1)
        start = datetime.combine(day, time(hour), UTC) + timedelta(minutes=30 * (pid % 4))
        with at(start - timedelta(days=20)):
            visit = appointments.book(
                session,
                chen,
                patient_id=pid,
                provider_id=chen_provider,
                start_at=start,
                reason="Diabetes review" if days < 0 else "Follow-up of blood results",
            )
            # Dr Chen keeps the default hours, whose slots name no room; the demo's visits do.
            visit.location = "Riverside Clinic, room 4"
        if status is not None:
            with at(start + timedelta(minutes=30)):
                appointments.set_status(session, chen, visit.id, status)


#: The link in the demo patients' activation mails (their codes are used at once).
DEMO_PORTAL_URL = "http://127.0.0.1:5000"


def seed(session: Session) -> None:
    """The demo accounts of CONTRACT §4 with their records, in one unit of work; the audit
    entries they made are then sealed into the chain (the worker would, a second later)."""
    with unit_of_work(session):
        _seed(session)
    with unit_of_work(session):
        chain.seal(session, batch=100_000)


def _seed(session: Session) -> None:
    rng = random.Random(20261124)  # noqa: S311  (demo values, not secrets)
    now = utcnow().replace(microsecond=0)
    with at(now - timedelta(days=800)):
        admin_user, _ = accounts.create_staff(
            session,
            None,
            email="admin@example.org",
            role=Role.ADMIN,
            display_name="Portal administrator",
            password=PASSWORD,
        )
        admin = Actor.of(admin_user)
        # The operator makes the providers' accounts (`users create`), so that the demo admin
        # may put them on care teams alone: an admin who brought an account in could not
        # (accounts.assign_provider would wait for a second administrator).
        chen_user, _ = accounts.create_staff(
            session,
            None,
            email="dr.chen@example.org",
            role=Role.PROVIDER,
            display_name="Dr Mei Chen",
            specialty="Internal medicine",
            clinic="Riverside Clinic",
            password=PASSWORD,
        )
        okafor_user, _ = accounts.create_staff(
            session,
            None,
            email="dr.okafor@example.org",
            role=Role.PROVIDER,
            display_name="Dr Chidi Okafor",
            specialty="Family medicine",
            clinic="Hillside Clinic",
            password=PASSWORD,
        )
        session.flush()
        session.refresh(chen_user)
        session.refresh(okafor_user)
        chen, okafor = Actor.of(chen_user), Actor.of(okafor_user)
        for category, mode, never in (
            ("hematology", ReleaseMode.ON_PUBLISH, False),
            ("chemistry", ReleaseMode.ON_PUBLISH, False),
            ("genetic", ReleaseMode.HOLD_FOR_REVIEW, True),
        ):
            session.add(ReleasePolicy(category=category, mode=mode, never_auto_release=never))

        people = [
            ("alice@example.org", "MRN-100001", "Alice Martin", date(1984, 3, 12), chen),
            ("bob@example.org", "MRN-100002", "Bob Okonkwo", date(1969, 11, 2), chen),
            ("carol@example.org", "MRN-100003", "Carol Jensen", date(1991, 7, 23), okafor),
            ("dan@example.org", "MRN-100004", "Dan Haddad", date(1957, 1, 30), okafor),
        ]
        profiles = []
        for email, mrn, name, born, provider in people:
            patient = accounts.register_patient(
                session,
                admin,
                medical_record_number=mrn,
                display_name=name,
                date_of_birth=born,
                primary_clinic="Riverside Clinic" if provider is chen else "Hillside Clinic",
                contact_email=email,
            )
            code = accounts.issue_activation_code(
                session, admin, patient, portal_url=DEMO_PORTAL_URL
            )
            accounts.activate_patient(
                session, code=code, email=email, password=PASSWORD, date_of_birth=born
            )
            assert provider.provider_id is not None
            accounts.assign_provider(
                session, admin, patient_id=patient.id, provider_id=provider.provider_id
            )
            profiles.append((patient, provider))
    for patient, provider in profiles:
        _patient_history(session, provider, patient, rng, now)


def seed_bulk(session: Session, *, patients: int, labs_per_patient: int) -> int:
    """Many generated patients with results, written in bulk (benchmark data; no accounts).

    Half are assigned to dr.okafor, so list pages can be measured at scale. A unit of work
    per chunk of patients.
    """
    rng = random.Random(7)  # noqa: S311
    okafor = session.scalar(select(User).where(User.email == "dr.okafor@example.org"))
    assert okafor is not None
    assert okafor.provider is not None
    now = utcnow()
    patient_count = unscoped(select(func.count()).select_from(PatientProfile), "demo numbering")
    serial = (session.scalar(patient_count) or 0) + 1
    tests = [t for t in CATALOG if t.low is not None or t.high is not None]
    chunk = 500
    for base in range(0, patients, chunk):
        with unit_of_work(session):
            n = min(chunk, patients - base)
            numbers = range(serial + base, serial + base + n)
            ids = list(
                session.scalars(
                    insert(PatientProfile).returning(
                        PatientProfile.id, sort_by_parameter_order=True
                    ),
                    [
                        {
                            "medical_record_number": f"GEN-{i:07d}",
                            "display_name": f"Generated Patient {i}",
                            "date_of_birth": date(1940 + i % 60, 1 + i % 12, 1 + i % 28),
                            "primary_clinic": "Hillside Clinic",
                        }
                        for i in numbers
                    ],
                )
            )
            session.execute(
                insert(CareAssignment),
                [
                    {"patient_id": i, "provider_id": okafor.provider.id, "started_at": now}
                    for i in ids
                    if i % 2 == 0
                ],
            )
            results, versions = [], []
            for i in ids:
                for k in range(labs_per_patient):
                    test = tests[(i + k) % len(tests)]
                    when = now - timedelta(days=k * 7, minutes=i % 600)
                    value = _value(test, rng, abnormal=k % 5 == 0)
                    low, high = test.low, test.high
                    numeric = float(value)
                    results.append(
                        {
                            "patient_id": i,
                            "test_code": test.loinc,
                            "test_name": test.name,
                            "category": test.category,
                            "ordered_by_id": okafor.id,
                            "current_version": 1,
                            "shared_version": 1,
                            "shared_at": when,
                            "published_at": when,
                            "collected_at": when - timedelta(hours=test.turnaround_hours),
                            "created_at": when,
                            "updated_at": when,
                        }
                    )
                    versions.append(
                        {
                            "patient_id": i,
                            "version": 1,
                            "result_value": value,
                            "units": test.units,
                            "reference_range": test.reference_range,
                            "numeric_value": numeric,
                            "reference_low": low,
                            "reference_high": high,
                            "flag": labs.compute_flag(numeric, low, high),
                            "status": ResultStatus.FINAL,
                            "visibility": Visibility.SHARED,
                            "published_by_id": okafor.id,
                            "published_at": when,
                            "released_at": when,
                            "created_at": when,
                        }
                    )
            result_ids = session.scalars(
                insert(LabResult).returning(LabResult.id, sort_by_parameter_order=True), results
            )
            for version, result_id in zip(versions, result_ids, strict=True):
                version["lab_result_id"] = result_id
            session.execute(insert(LabResultVersion), versions)
    return patients

"""Demo data (never in production): the demo accounts listed in the README and realistic
records, made through the services.

The services read the clock, so each step runs with the clock set to when it "happened":
the history (versions, audit entries, notifications) is exactly what real use would leave.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session

from portal.access import Actor, unscoped
from portal.audit import chain
from portal.db import Base, UTCDateTime, get_clock, set_clock, utcnow
from portal.models import (
    AppointmentStatus,
    CareAssignment,
    Flag,
    LabResult,
    LabResultVersion,
    PatientProfile,
    ProxyRelationship,
    ProxyScope,
    ReleaseMode,
    ReleasePolicy,
    ResultStatus,
    Role,
    User,
    Visibility,
)
from portal.services import accounts, appointments, attachments, labs, messaging, plans, proxies
from portal.services.catalog import BY_CODE, CATALOG, TestDefinition
from portal.transactions import unit_of_work

PASSWORD = "Demo-Portal-2026!"  # noqa: S105  (every demo account's password, public in the README)
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
    hold: labs.Hold | None = None,
) -> LabResult:
    test = BY_CODE[code]
    return labs.create_result(
        session,
        provider,
        patient_id,
        test_code=test.loinc,
        test_name=test.name,
        data=labs.ResultInput(value, test.units, test.reference_range, status, visibility),
        hold=hold,
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
        # The genetic test is held by its clinician for this patient (preventing harm, 45 CFR
        # 171.201), not by a rule for its category: the demo clinic leaves those off.
        _publish(
            session,
            chen,
            pid,
            "21636-6",
            "No pathogenic variant detected",
            hold=labs.Hold(
                "A genetic result is explained in person first: a counselling visit is booked.",
                now + timedelta(days=6),
            ),
        )

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
    """The demo accounts (the README lists them) with their records, in one unit of work; the audit
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
            ("sexual_health", ReleaseMode.HOLD_FOR_REVIEW, True),
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
    _family(session, admin, chen, profiles, rng, now)


def _family(
    session: Session,
    admin: Actor,
    chen: Actor,
    profiles: list[tuple[PatientProfile, Actor]],
    rng: random.Random,
    now: datetime,
) -> None:
    """Proxy access: Sam Martin, alice's son, 14 on the demo's day, a patient of dr.chen with a
    confidential (sexual-health) result, his mother holding a parent's grant; and carol, who
    cares for dan, holding his grant to his appointments and lab results."""
    born = (now - timedelta(days=14 * 365 + 120)).date()
    with at(now - timedelta(days=400)):
        sam = accounts.register_patient(
            session,
            admin,
            medical_record_number="MRN-100005",
            display_name="Sam Martin",
            date_of_birth=born,
            primary_clinic="Riverside Clinic",
            contact_email="sam@example.org",
        )
        code = accounts.issue_activation_code(session, admin, sam, portal_url=DEMO_PORTAL_URL)
        accounts.activate_patient(
            session, code=code, email="sam@example.org", password=PASSWORD, date_of_birth=born
        )
        assert chen.provider_id is not None
        accounts.assign_provider(session, admin, patient_id=sam.id, provider_id=chen.provider_id)
    by_email = {p.contact_email: p for p, _provider in profiles}
    alice, carol, dan = (
        session.scalars(
            select(User).where(User.id == by_email[f"{name}@example.org"].user_id)
        ).one()
        for name in ("alice", "carol", "dan")
    )
    with at(now - timedelta(days=30)):
        for code in ("4548-4", "2093-3"):
            _publish(session, chen, sam.id, code, _value(BY_CODE[code], rng))
        chlamydia = _publish(session, chen, sam.id, "43304-5", "Not detected")
        # Released when published (the category rules are off: issue 25); where a clinic
        # turns them on, its sexual-health rule holds it for this review. Who may see it
        # (never a parent's proxy) is the separate, privacy-based rule in `access`.
        if labs.held_version(session, chen, chlamydia) is not None:
            labs.review_and_release(session, chen, chlamydia.id)
    with at(now - timedelta(days=10)):
        proxies.record_grant(
            session,
            admin,
            sam.id,
            alice,
            ProxyRelationship.PARENT,
            frozenset(ProxyScope),
            legal_basis="parental responsibility (birth certificate seen at the clinic)",
            ends_at=now + timedelta(days=365),
        )
        proxies.grant(
            session,
            Actor.of(dan),
            carol,
            ProxyRelationship.CAREGIVER,
            frozenset({ProxyScope.APPOINTMENTS, ProxyScope.LAB_RESULTS}),
            ends_at=now + timedelta(days=365),
        )


def seed_bulk(
    session: Session, *, patients: int, labs_per_patient: int, okafor_every: int = 2
) -> int:
    """Many generated patients with results, written in bulk (benchmark data; no accounts).

    Every `okafor_every`-th is assigned to dr.okafor (by default half), so list pages can be
    measured at scale. A unit of work per chunk of patients.
    """
    rng = random.Random(7)  # noqa: S311
    okafor = session.scalar(select(User).where(User.email == "dr.okafor@example.org"))
    assert okafor is not None
    assert okafor.provider is not None
    now = utcnow()
    patient_count = unscoped(select(func.count()).select_from(PatientProfile), "demo numbering")
    serial = (session.scalar(patient_count) or 0) + 1
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
                    if i % okafor_every == 0
                ],
            )
            bulk_results(session, ids, labs_per_patient, ordered_by_id=okafor.id, now=now, rng=rng)
    return patients


#: The catalog's numeric tests, which the generated results cycle through.
_NUMERIC_TESTS = [t for t in CATALOG if t.low is not None or t.high is not None]

_RESULT_COLUMNS = (
    "id",
    "patient_id",
    "test_code",
    "test_name",
    "category",
    "ordered_by_id",
    "current_version",
    "shared_version",
    "shared_at",
    "published_at",
    "collected_at",
    "created_at",
    "updated_at",
)
_VERSION_COLUMNS = (
    "lab_result_id",
    "patient_id",
    "version",
    "result_value",
    "units",
    "reference_range",
    "numeric_value",
    "reference_low",
    "reference_high",
    "flag",
    "status",
    "visibility",
    "published_by_id",
    "published_at",
    "released_at",
    "created_at",
)
#: Rows per INSERT statement on SQLite: 16 columns x 1,000 stays under its parameter limit.
_ROWS_PER_STATEMENT = 1000
#: Rows per INSERT on PostgreSQL, whose parameters are one array per column.
_ROWS_PER_ARRAY = 10_000


def bulk_results(
    session: Session,
    patient_ids: Sequence[int],
    per_patient: int,
    *,
    ordered_by_id: int,
    now: datetime,
    rng: random.Random,
) -> None:
    """`per_patient` final, released results (one version each) for each of `patient_ids`, a
    week apart back from `now`: no audit entries or notifications (benchmark and query-plan
    data, which nobody viewed or was told about).

    Written as plain rows in multi-row INSERTs, past the ORM and SQLAlchemy's per-parameter
    processing (a million results took minutes of Python time that way): values are made
    database-ready once (`_Processed`), and the results' ids are reserved up front, so the
    versions need no RETURNING.
    """
    conn = session.connection()
    ready = _Processed(conn.dialect)
    shared, final = ready.enum(Visibility.SHARED), ready.enum(ResultStatus.FINAL)
    flags = {flag: ready.enum(flag) for flag in Flag}
    ids = iter(_reserve_ids(conn, LabResult.__tablename__, len(patient_ids) * per_patient))
    results: list[tuple[Any, ...]] = []
    versions: list[tuple[Any, ...]] = []
    tests = _NUMERIC_TESTS
    for i in patient_ids:
        for k in range(per_patient):
            test = tests[(i + k) % len(tests)]
            moment = now - timedelta(days=k * 7, minutes=i % 600)
            when = ready.time(moment)
            collected = ready.time(moment - timedelta(hours=test.turnaround_hours))
            value = _value(test, rng, abnormal=k % 5 == 0)
            numeric = float(value)
            result_id = next(ids)
            results.append(
                (
                    result_id,
                    i,
                    test.loinc,
                    test.name,
                    test.category,
                    ordered_by_id,
                    1,
                    1,
                    when,
                    when,
                    collected,
                    when,
                    when,
                )
            )
            flag = flags[labs.compute_flag(numeric, test.low, test.high)]
            versions.append(
                (
                    result_id,
                    i,
                    1,
                    value,
                    test.units,
                    test.reference_range,
                    numeric,
                    test.low,
                    test.high,
                    flag,
                    final,
                    shared,
                    ordered_by_id,
                    when,
                    when,
                    when,
                )
            )
    _insert_rows(conn, LabResult.__tablename__, _RESULT_COLUMNS, results)
    _insert_rows(conn, LabResultVersion.__tablename__, _VERSION_COLUMNS, versions)


class _Processed:
    """Values as the driver takes them for this database, as SQLAlchemy's column types would
    bind them (UTC datetimes made naive, enum members as their values); times are cached, as
    the generated rows repeat them."""

    def __init__(self, dialect: Dialect) -> None:
        self._time = UTCDateTime().bind_processor(dialect) or (lambda v: v)
        self._times: dict[datetime, Any] = {}

    def time(self, moment: datetime) -> Any:
        done = self._times.get(moment)
        if done is None:
            done = self._times[moment] = self._time(moment)
        return done

    @staticmethod
    def enum(member: enum.StrEnum) -> str:
        return member.value  # the models store enum members by value (`portal.db.Base`)


def _reserve_ids(conn: Connection, table: str, count: int) -> Sequence[int]:
    """`count` new ids for `table`, taken before its rows are written."""
    if conn.dialect.name == "postgresql":
        sequence = conn.exec_driver_sql(
            "SELECT pg_get_serial_sequence(%s, 'id')", (table,)
        ).scalar_one()
        taken = conn.exec_driver_sql(
            "SELECT nextval(%s) FROM generate_series(1, %s)", (sequence, count)
        )
        return list(taken.scalars())
    # SQLite: the unit of work holds the database's write lock (BEGIN IMMEDIATE), so no one
    # else takes an id before these rows are in.
    top = conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}").scalar_one()  # noqa: S608
    return range(top + 1, top + 1 + count)


def _insert_rows(
    conn: Connection, name: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """`rows` (driver-ready values in `columns`' order) in INSERTs of many rows each.

    PostgreSQL takes each column as one array (`unnest`): psycopg converts a query's
    placeholders anew for every statement of more than 50, which cost more than the insert.
    SQLite takes multi-row VALUES lists.
    """
    table = Base.metadata.tables[name]
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        arrays = ", ".join(f"%s::{table.c[c].type.compile(conn.dialect)}[]" for c in columns)
        sql = f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays})"  # noqa: S608
        for start in range(0, len(rows), _ROWS_PER_ARRAY):
            batch = rows[start : start + _ROWS_PER_ARRAY]
            conn.exec_driver_sql(sql, tuple(list(column) for column in zip(*batch, strict=True)))
        return
    one = "(" + ", ".join(["?"] * len(columns)) + ")"
    head = f"INSERT INTO {table.name} ({names}) VALUES "  # noqa: S608  (our own names)
    full = head + ", ".join([one] * _ROWS_PER_STATEMENT)
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        batch = rows[start : start + _ROWS_PER_STATEMENT]
        sql = full if len(batch) == _ROWS_PER_STATEMENT else head + ", ".join([one] * len(batch))
        conn.exec_driver_sql(sql, tuple(value for row in batch for value in row))

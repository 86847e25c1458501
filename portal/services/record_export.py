"""A record that leaves with the patient: everything they may see of their own record, gathered
once (`gather`) for the printable summary page and written as a FHIR R4 Bundle (`to_fhir`).

Every read goes through the patient's own scope: the other services' scoped verbs (profile,
plans, appointments, care team) and, for the results, one statement written with `RoleScope`
whose `PATIENT_FILTERS` keep held, unreleased and provider-only versions out. Nothing here
decides visibility again, and nothing reads unscoped.

Versions (see docs/architecture.md, "A record that leaves with the patient"): each version
the patient may see is its own resource (`lab-result-17-2`, `treatment-plan-4-3`). The
versions of one record share its `identifier` and carry their number in `meta.versionId`; a
later version points to the one it supersedes (`Observation.derivedFrom`, `CarePlan.replaces`),
and a superseded one carries the `superseded` tag, so an importer that reads only current
facts can skip it while the history stays in the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from portal.access import Actor, Permission, RoleScope, reader, require, scoped
from portal.audit import Subject
from portal.db import utcnow
from portal.i18n import LANGUAGES
from portal.models import (
    Appointment,
    AppointmentStatus,
    Entity,
    Flag,
    LabResult,
    LabResultVersion,
    PatientProfile,
    PlanAcknowledgement,
    PlanStatus,
    ProviderProfile,
    TreatmentPlan,
    TreatmentPlanVersion,
)
from portal.services import appointments, labs, paging, plans, profiles
from portal.services.catalog import human_units

#: How the audit log names a read of the whole record (the summary page, the download, the API).
ENTITY = Entity.PATIENT_RECORD

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ResultHistory:
    """One lab result and the versions of it the patient may see, oldest first."""

    result: LabResult
    versions: list[LabResultVersion]

    @property
    def current(self) -> LabResultVersion:
        return self.versions[-1]


@dataclass(frozen=True, slots=True)
class PlanHistory:
    """One treatment plan and the versions of it the patient may see (never a draft), oldest
    first, each with the patient's acknowledgement when they gave one."""

    plan: TreatmentPlan
    versions: list[tuple[TreatmentPlanVersion, PlanAcknowledgement | None]]

    @property
    def current(self) -> TreatmentPlanVersion:
        return self.versions[-1][0]


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """What the patient may see of their record now, as of `made_at`."""

    patient: PatientProfile
    results: list[ResultHistory]
    plans: list[PlanHistory]
    appointments: list[Appointment]
    #: Their current care team, by name.
    care_team: list[ProviderProfile]
    #: Every provider the record names (care team and visits), by provider profile id.
    providers: dict[int, ProviderProfile]
    made_at: datetime

    @property
    def subject(self) -> Subject:
        """What a response showing it shows: the patient's whole record (`ENTITY`)."""
        return Subject(ENTITY, self.patient.id, self.patient.id)


def _visible_versions_stmt(rs: RoleScope) -> Select[LabResult, LabResultVersion]:
    """Each of the reader's own results with every version of it they may see, newest sample
    first, versions oldest first. For a patient, `rs.scope` adds `PATIENT_FILTERS`: results
    with no released version and versions held, unreleased or provider-only never load."""
    stmt = (
        select(LabResult, LabResultVersion)
        .join(LabResultVersion, LabResultVersion.lab_result_id == LabResult.id)
        .where(LabResultVersion.patient_id == rs.patient_id)
        .order_by(LabResult.collected_at.desc(), LabResult.id.desc(), LabResultVersion.version)
    )
    return rs.scope(stmt, LabResult)


def _results(session: Session, actor: Actor) -> list[ResultHistory]:
    histories: dict[int, ResultHistory] = {}
    for result, version in session.execute(scoped(_visible_versions_stmt, actor), reader(actor)):
        histories.setdefault(result.id, ResultHistory(result, [])).versions.append(version)
    return list(histories.values())


def _every_page(read: Callable[[str | None], paging.Page[T]]) -> list[T]:
    """All rows of a paged list, page by page (the lists' own order and scope)."""
    rows: list[T] = []
    cursor: str | None = None
    while True:
        page = read(cursor)
        rows.extend(page.rows)
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor


def gather(session: Session, actor: Actor) -> PatientRecord:
    """The signed-in patient's whole record as they may see it now: profile, every visible
    version of their results and plans, their visits and their care team.

    403 for anyone but a patient (a provider or an administrator exports no one's record
    here). A response showing it names `subject` as what it shows.
    """
    require(actor, Permission.READ_OWN_RECORDS)
    patient = profiles.own_profile(session, actor)
    every_plan = _every_page(
        lambda c: plans.list_for(session, actor, None, cursor=c, limit=paging.MAX_LIMIT)
    )
    plan_histories = [
        PlanHistory(plan, list(reversed(plans.history(session, actor, plan))))
        for plan in every_plan
    ]
    visits = _every_page(
        lambda c: appointments.list_for(session, actor, cursor=c, limit=paging.MAX_LIMIT)
    )
    team = appointments.providers_for(session, actor)
    providers = {p.id: p for p in team}
    missing = {v.provider_id for v in visits} - providers.keys()
    providers.update(appointments.providers_by_id(session, missing))
    return PatientRecord(
        patient=patient,
        results=_results(session, actor),
        plans=[h for h in plan_histories if h.versions],
        appointments=visits,
        care_team=team,
        providers=providers,
        made_at=utcnow(),
    )


# --- FHIR R4 -------------------------------------------------------------------------------------

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

#: The portal's flags as HL7 v3 ObservationInterpretation codes (none for "unknown").
INTERPRETATIONS: dict[Flag, tuple[str, str]] = {
    Flag.NORMAL: ("N", "Normal"),
    Flag.LOW: ("L", "Low"),
    Flag.HIGH: ("H", "High"),
    Flag.CRITICAL_LOW: ("LL", "Critical low"),
    Flag.CRITICAL_HIGH: ("HH", "Critical high"),
    Flag.ABNORMAL: ("A", "Abnormal"),
}

#: Visit statuses as FHIR Appointment.status: a request waits for the clinic ("proposed").
APPOINTMENT_STATUS: dict[AppointmentStatus, str] = {
    AppointmentStatus.REQUESTED: "proposed",
    AppointmentStatus.SCHEDULED: "booked",
    AppointmentStatus.CANCELLED: "cancelled",
    AppointmentStatus.COMPLETED: "fulfilled",
    AppointmentStatus.NO_SHOW: "noshow",
}

_LOINC_CODE = re.compile(r"[0-9]{1,7}-[0-9]")
_NUMBER = re.compile(r"\s*(<=|>=|<|>)?\s*([-+]?[0-9]+(?:\.[0-9]+)?)\s*")


def is_loinc(code: str) -> bool:
    """Whether `code` is a LOINC code: digits, a hyphen and the right mod-10 check digit (a
    code entered by hand that is not one is sent as the clinic's own)."""
    if not _LOINC_CODE.fullmatch(code):
        return False
    digits, check = code.split("-")
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n // 10 + n % 10
    return (10 - total % 10) % 10 == int(check)


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _number(text: str) -> int | float:
    return int(text) if re.fullmatch(r"[-+]?[0-9]+", text) else float(text)


def _quantity(value: float | int, units: str | None) -> dict[str, Any]:
    """A UCUM quantity: the code as data keeps it, the unit as people write it."""
    quantity: dict[str, Any] = {"value": value}
    if units:
        quantity.update(unit=human_units(units), system=UCUM, code=units)
    return quantity


def _value(version: LabResultVersion) -> dict[str, Any]:
    """`valueQuantity` for a number (`<5` keeps its comparator), else `valueString`."""
    m = _NUMBER.fullmatch(version.result_value)
    if m is None:
        return {"valueString": version.result_value}
    quantity = _quantity(_number(m[2]), version.units)
    if m[1]:
        quantity = {"value": quantity.pop("value"), "comparator": m[1], **quantity}
    return {"valueQuantity": quantity}


def _reference_range(version: LabResultVersion) -> list[dict[str, Any]]:
    if not version.reference_range:
        return []
    low, high = labs.parse_range(version.reference_range)
    text = version.reference_range
    if version.units:
        text = f"{text} {human_units(version.units)}"
    entry: dict[str, Any] = {}
    if low is not None:
        entry["low"] = _quantity(low, version.units)
    if high is not None:
        entry["high"] = _quantity(high, version.units)
    entry["text"] = text
    return [entry]


@dataclass(frozen=True, slots=True)
class _Ids:
    """Where the resources of one export live: `base` names the portal (PORTAL_URL)."""

    base: str

    def full_url(self, resource_type: str, resource_id: str) -> str:
        # A fullUrl need not resolve (R4 Bundle.entry.fullUrl); relative references inside
        # the Bundle resolve against it.
        return f"{self.base}/fhir/{resource_type}/{resource_id}"

    def system(self, name: str) -> str:
        return f"{self.base}/fhir/sid/{name}"


def _superseded(ids: _Ids) -> dict[str, Any]:
    return {
        "tag": [
            {
                "system": ids.system("version-state"),
                "code": "superseded",
                "display": "Superseded by a later version in this record",
            }
        ]
    }


def _meta(ids: _Ids, version: int, updated: datetime | None, superseded: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"versionId": str(version)}
    if updated is not None:
        meta["lastUpdated"] = _instant(updated)
    if superseded:
        meta.update(_superseded(ids))
    return meta


def _patient(ids: _Ids, patient: PatientProfile) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": f"patient-{patient.id}",
        "identifier": [
            {
                "use": "usual",
                "type": {"coding": [{"system": IDENTIFIER_TYPE, "code": "MR"}]},
                "system": ids.system("mrn"),
                "value": patient.medical_record_number,
            }
        ],
        "active": patient.is_active,
        "name": [{"text": patient.display_name}],
    }
    telecom = [
        {"system": kind, "value": value}
        for kind, value in (("phone", patient.contact_phone), ("email", patient.contact_email))
        if value
    ]
    if telecom:
        resource["telecom"] = telecom
    if patient.date_of_birth is not None:
        resource["birthDate"] = patient.date_of_birth.isoformat()
    if patient.preferred_language:
        resource["communication"] = [
            {
                "language": {
                    "coding": [{"system": "urn:ietf:bcp:47", "code": patient.preferred_language}],
                    "text": LANGUAGES.get(patient.preferred_language, patient.preferred_language),
                },
                "preferred": True,
            }
        ]
    return resource


def _practitioner(provider: ProviderProfile) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": f"practitioner-{provider.id}",
        "name": [{"text": provider.display_name}],
    }


def _observations(ids: _Ids, patient_ref: str, history: ResultHistory) -> Iterable[dict[str, Any]]:
    result = history.result
    code: dict[str, Any] = {"text": result.test_name}
    if is_loinc(result.test_code):
        code["coding"] = [{"system": LOINC, "code": result.test_code, "display": result.test_name}]
    else:
        code["coding"] = [{"system": ids.system("test-code"), "code": result.test_code}]
    previous: str | None = None
    for version in history.versions:
        resource_id = f"lab-result-{result.id}-{version.version}"
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "id": resource_id,
            "meta": _meta(
                ids, version.version, version.published_at, version is not history.current
            ),
            "identifier": [{"system": ids.system("lab-result"), "value": str(result.id)}],
            "status": version.status.value,
            "category": [
                {
                    "coding": [
                        {
                            "system": OBSERVATION_CATEGORY,
                            "code": "laboratory",
                            "display": "Laboratory",
                        }
                    ]
                }
            ],
            "code": code,
            "subject": {"reference": patient_ref},
            "effectiveDateTime": _instant(result.collected_at),
        }
        if version.published_at is not None:
            obs["issued"] = _instant(version.published_at)
        obs.update(_value(version))
        if version.flag in INTERPRETATIONS:
            code_, display = INTERPRETATIONS[version.flag]
            obs["interpretation"] = [
                {"coding": [{"system": INTERPRETATION, "code": code_, "display": display}]}
            ]
        if version.change_reason:
            obs["note"] = [{"text": version.change_reason}]
        if ranges := _reference_range(version):
            obs["referenceRange"] = ranges
        if previous is not None:
            obs["derivedFrom"] = [{"reference": previous}]
        previous = f"Observation/{resource_id}"
        yield obs


_PLAN_STATUS = {PlanStatus.ACTIVE: "active", PlanStatus.COMPLETED: "completed"}


def _period(start: date | None, end: date | None) -> dict[str, str]:
    period = {}
    if start is not None:
        period["start"] = start.isoformat()
    if end is not None:
        period["end"] = end.isoformat()
    return period


def _care_plans(ids: _Ids, patient_ref: str, history: PlanHistory) -> Iterable[dict[str, Any]]:
    previous: str | None = None
    for version, _ack in history.versions:
        resource_id = f"treatment-plan-{history.plan.id}-{version.version}"
        plan: dict[str, Any] = {
            "resourceType": "CarePlan",
            "id": resource_id,
            "meta": _meta(ids, version.version, version.created_at, version is not history.current),
            "identifier": [{"system": ids.system("treatment-plan"), "value": str(history.plan.id)}],
            "status": _PLAN_STATUS[version.status],
            "intent": "plan",
            "title": version.summary,
            "subject": {"reference": patient_ref},
        }
        if version.details:
            plan["description"] = version.details
        if period := _period(version.start_date, version.end_date):
            plan["period"] = period
        plan["created"] = _instant(version.created_at)
        if version.change_note:
            plan["note"] = [{"text": version.change_note}]
        if previous is not None:
            plan["replaces"] = [{"reference": previous}]
        previous = f"CarePlan/{resource_id}"
        yield plan


def _appointment(
    patient_ref: str, visit: Appointment, provider: ProviderProfile | None
) -> dict[str, Any]:
    participants: list[dict[str, Any]] = [
        {"actor": {"reference": patient_ref}, "required": "required", "status": "accepted"}
    ]
    if provider is not None:
        participants.append(
            {
                "type": [{"coding": [{"system": PARTICIPANT_TYPE, "code": "PPRF"}]}],
                "actor": {
                    "reference": f"Practitioner/practitioner-{provider.id}",
                    "display": provider.display_name,
                },
                "required": "required",
                "status": "accepted",
            }
        )
    if visit.location:
        # R4 names a place only as a Location resource; its words are enough here.
        participants.append(
            {"actor": {"display": visit.location}, "required": "required", "status": "accepted"}
        )
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": f"appointment-{visit.id}",
        "status": APPOINTMENT_STATUS[visit.status],
        "start": _instant(visit.start_at),
        "end": _instant(visit.end_at),
        "created": _instant(visit.created_at),
        "participant": participants,
    }
    if visit.reason:
        resource["description"] = visit.reason
    if visit.cancel_reason and visit.status is AppointmentStatus.CANCELLED:
        resource["cancelationReason"] = {"text": visit.cancel_reason}
    return resource


def _care_team(patient_ref: str, record: PatientRecord) -> dict[str, Any]:
    participants = []
    for provider in record.care_team:
        member: dict[str, Any] = {
            "member": {
                "reference": f"Practitioner/practitioner-{provider.id}",
                "display": provider.display_name,
            }
        }
        if provider.specialty:
            member["role"] = [{"text": provider.specialty}]
        participants.append(member)
    team: dict[str, Any] = {
        "resourceType": "CareTeam",
        "id": f"care-team-{record.patient.id}",
        "status": "active",
        "name": "My care team",
        "subject": {"reference": patient_ref},
    }
    if participants:
        team["participant"] = participants
    return team


def to_fhir(record: PatientRecord, base_url: str) -> dict[str, Any]:
    """The record as a FHIR R4 Bundle of type `collection`, as JSON-ready data: the Patient,
    the care team and its Practitioners, every visible version of each result (Observation)
    and plan (CarePlan), and the visits (Appointment). Units stay UCUM codes, with the written
    form in `unit`; moments are UTC."""
    ids = _Ids(base_url.rstrip("/"))
    patient = _patient(ids, record.patient)
    patient_ref = f"Patient/{patient['id']}"
    resources: list[dict[str, Any]] = [patient, _care_team(patient_ref, record)]
    resources += [_practitioner(p) for p in sorted(record.providers.values(), key=lambda p: p.id)]
    for result in record.results:
        resources += _observations(ids, patient_ref, result)
    for plan in record.plans:
        resources += _care_plans(ids, patient_ref, plan)
    resources += [
        _appointment(patient_ref, v, record.providers.get(v.provider_id))
        for v in record.appointments
    ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _instant(record.made_at),
        "entry": [
            {"fullUrl": ids.full_url(r["resourceType"], r["id"]), "resource": r} for r in resources
        ],
    }

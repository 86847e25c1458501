"""Publishing lab results: a new result, a corrected or amended version, report files."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from portal import audit
from portal.access import Actor, Permission, get_or_404, reader, require, scoped
from portal.db import utcnow
from portal.models import (
    Attachment,
    AuditAction,
    Entity,
    LabResult,
    LabResultVersion,
    PatientProfile,
    ResultStatus,
    Visibility,
)
from portal.services import attachments
from portal.services.catalog import BY_CODE, TestDefinition
from portal.services.errors import ServiceError
from portal.services.labs.history import version_stmt
from portal.services.labs.release import Hold, announce_release, check_hold, release_times, set_hold
from portal.services.labs.values import TOO_LARGE, compute_flag, parse_range, parse_value, sane


class LabInputError(ServiceError):
    """A result, correction or release policy that cannot be saved."""


@dataclass(frozen=True, slots=True)
class ResultInput:
    """What a provider enters for a result or a new version of one."""

    result_value: str
    units: str | None
    reference_range: str | None
    status: ResultStatus
    #: None: a new version keeps the visibility of the version it follows (a new result is
    #: shared), so a correction sent without it never widens a provider-only result.
    visibility: Visibility | None = Visibility.SHARED


def _check_numbers(data: ResultInput) -> None:
    """Refuse a value or range bound that parses to infinity or is too large to be a result
    (it would be flagged, charted and sent as that number)."""
    if not sane(parse_value(data.result_value)):
        raise LabInputError("result_value", TOO_LARGE)
    if not all(sane(bound) for bound in parse_range(data.reference_range)):
        raise LabInputError("reference_range", TOO_LARGE)


def _new_version(
    session: Session,
    actor: Actor,
    result: LabResult,
    patient: PatientProfile,
    data: ResultInput,
    *,
    number: int,
    reason: str | None,
    previously_shared: bool,
) -> LabResultVersion:
    assert data.visibility is not None  # resolved by create_result / add_version
    low, high = parse_range(data.reference_range)
    numeric = parse_value(data.result_value)
    definition = BY_CODE.get(result.test_code)
    flag = compute_flag(
        numeric,
        low,
        high,
        definition.critical_low if definition else None,
        definition.critical_high if definition else None,
    )
    now = utcnow()
    published = data.status is not ResultStatus.PRELIMINARY
    released_at = due_at = None
    if published and data.visibility is Visibility.SHARED:
        if previously_shared:
            # A correction of something the patient saw is never held back from them.
            released_at = now
        else:
            released_at, due_at = release_times(session, patient, result, now)
    version = LabResultVersion(
        lab_result_id=result.id,
        patient_id=result.patient_id,
        version=number,
        result_value=data.result_value.strip(),
        units=(data.units or "").strip() or None,
        reference_range=(data.reference_range or "").strip() or None,
        numeric_value=numeric,
        reference_low=low,
        reference_high=high,
        flag=flag,
        status=data.status,
        visibility=data.visibility,
        change_reason=reason,
        published_by_id=actor.user_id if published else None,
        published_at=now if published else None,
        release_due_at=due_at,
        released_at=released_at,
    )
    session.add(version)
    result.current_version = number
    if published:
        result.published_at = now
    if released_at is not None:
        result.shared_version = number
        result.shared_at = released_at
    session.flush()
    return version


#: The earliest collection time accepted: older is a typing mistake, not a sample.
EARLIEST_COLLECTION = datetime(1900, 1, 1, tzinfo=UTC)


def _collection_time(given: datetime | None, definition: TestDefinition | None) -> datetime:
    """When the sample was taken: `given` (aware, not in the future), or an estimate."""
    now = utcnow()
    if given is None:
        return now - timedelta(hours=definition.turnaround_hours if definition else 0)
    if given.tzinfo is None:
        raise LabInputError("collected_at", "Give the collection time with its time zone.")
    if given > now:
        raise LabInputError("collected_at", "The collection time cannot be in the future.")
    if given < EARLIEST_COLLECTION:
        raise LabInputError("collected_at", "Enter a collection time after 1900.")
    return given


def create_result(
    session: Session,
    actor: Actor,
    patient_id: int,
    *,
    test_code: str,
    test_name: str,
    data: ResultInput,
    category: str | None = None,
    report: attachments.Upload | None = None,
    collected_at: datetime | None = None,
    hold: Hold | None = None,
) -> LabResult:
    """A new result for an assigned patient, saved as preliminary or published.

    Blank units or reference range take those of the test in the LOINC catalog (when
    `test_code` is in it). `collected_at` is when the sample was taken (not after now);
    without it, now less the catalog's usual turnaround for the test (now for a test the
    catalog does not know). `report`, when given, is attached to the first version in the same
    change; a file that cannot be attached is refused with `LabInputError` on "report" before
    anything is written. `hold`, when given, is the provider's hold on it (a reason of
    preventing harm and an end, `release.set_hold`), placed before it is published.
    """
    require(actor, Permission.LAB_RESULT_WRITE)
    patient = get_or_404(session, PatientProfile, patient_id, actor)
    if hold is not None:
        check_hold(hold.reason, hold.until, utcnow())
    if not data.result_value.strip():
        raise LabInputError("result_value", "Enter the result value.")
    if not test_name.strip():
        raise LabInputError("test_name", "Enter the test name.")
    if data.visibility is None:
        data = replace(data, visibility=Visibility.SHARED)
    definition = BY_CODE.get(test_code.strip())
    if definition is not None:
        data = replace(
            data,
            units=(data.units or "").strip() or definition.units,
            reference_range=(data.reference_range or "").strip() or definition.reference_range,
        )
    _check_numbers(data)
    collected = _collection_time(collected_at, definition)
    report_row = _report_row(actor, patient.id, report) if report is not None else None
    result = LabResult(
        patient_id=patient.id,
        test_code=test_code.strip(),
        test_name=test_name.strip(),
        category=category or (definition.category if definition else "general"),
        ordered_by_id=actor.user_id,
        current_version=1,
        collected_at=collected,
    )
    session.add(result)
    session.flush()
    if hold is not None:
        set_hold(session, actor, result, hold.reason, hold.until)
    version = _new_version(
        session, actor, result, patient, data, number=1, reason=None, previously_shared=False
    )
    audit.record(
        session,
        actor,
        AuditAction.PUBLISH if version.published_at else AuditAction.CREATE,
        Entity.LAB_RESULT,
        result.id,
        patient_id=patient.id,
        detail={"version": 1, "status": str(data.status)},
    )
    if version.released_at is not None:
        announce_release(session, result, version)
    if report_row is not None:
        _attach(session, actor, version, report_row)
    return result


def add_version(
    session: Session,
    actor: Actor,
    result_id: int,
    data: ResultInput,
    *,
    reason: str | None,
    report: attachments.Upload | None = None,
    hold: Hold | None = None,
) -> LabResultVersion:
    """Correct, amend, finalise or cancel a result; earlier versions stay readable.

    `report`, when given, is attached to the new version in the same change (refused with
    `LabInputError` on "report", as for `create_result`). `hold`, as for `create_result`:
    a provider finalising a preliminary result may hold it back (refused once the patient
    has seen the result).
    """
    require(actor, Permission.LAB_RESULT_WRITE)
    result = get_or_404(session, LabResult, result_id, actor)
    patient = get_or_404(session, PatientProfile, result.patient_id, actor)
    previous = session.scalar(
        scoped(version_stmt, actor),
        reader(actor, result_id=result.id, version=result.current_version),
    )
    assert previous is not None
    if not data.result_value.strip():
        raise LabInputError("result_value", "Enter the result value.")
    was_published = previous.status is not ResultStatus.PRELIMINARY
    if was_published and not (reason or "").strip():
        raise LabInputError("reason", "Say why this result is being changed.")
    if was_published and data.status is ResultStatus.PRELIMINARY:
        raise LabInputError("status", "A published result cannot go back to preliminary.")
    if data.visibility is None:
        data = replace(data, visibility=previous.visibility)
    _check_numbers(data)
    report_row = _report_row(actor, patient.id, report) if report is not None else None
    if hold is not None:
        set_hold(session, actor, result, hold.reason, hold.until)
    version = _new_version(
        session,
        actor,
        result,
        patient,
        data,
        number=result.current_version + 1,
        reason=(reason or "").strip() or None,
        previously_shared=result.shared_version is not None,
    )
    audit.record(
        session,
        actor,
        AuditAction.CORRECT if was_published else AuditAction.PUBLISH,
        Entity.LAB_RESULT,
        result.id,
        patient_id=result.patient_id,
        detail={"version": version.version, "status": str(data.status)},
    )
    if version.released_at is not None:
        announce_release(session, result, version)
    if report_row is not None:
        _attach(session, actor, version, report_row)
    return version


def finalize(
    session: Session,
    actor: Actor,
    result_id: int,
    data: ResultInput,
    *,
    hold: Hold | None = None,
) -> LabResultVersion:
    """Publish a preliminary result as final (a new version; the preliminary one stays
    readable to its care team). Refused on "status" for a result already published: that is
    a correction or an amendment, with its reason."""
    require(actor, Permission.LAB_RESULT_WRITE)
    result = get_or_404(session, LabResult, result_id, actor)
    if result.published_at is not None:
        raise LabInputError(
            "status",
            "This result is already published: correct or amend it, saying why.",
        )
    return add_version(
        session, actor, result_id, replace(data, status=ResultStatus.FINAL), reason=None, hold=hold
    )


def _report_row(actor: Actor, patient_id: int, upload: attachments.Upload) -> Attachment:
    """The encrypted row for a report file; a refused file is a `LabInputError` on "report"."""
    try:
        return attachments.build(upload, patient_id=patient_id, uploaded_by_id=actor.user_id)
    except attachments.AttachmentError as exc:
        raise LabInputError("report", exc.message) from exc


def attach_report(
    session: Session, actor: Actor, version: LabResultVersion, upload: attachments.Upload
) -> Attachment:
    """Attach a report file (PDF, image) to one version; it follows that version's visibility.

    A file that cannot be attached is refused with `LabInputError` on "report".
    """
    require(actor, Permission.LAB_RESULT_WRITE)
    return _attach(session, actor, version, _report_row(actor, version.patient_id, upload))


def attach_current_report(
    session: Session, actor: Actor, result_id: int, upload: attachments.Upload
) -> Attachment:
    """Attach a report file to the newest version of result `result_id` (an assigned
    provider; 404 for a result not theirs), as `attach_report`."""
    require(actor, Permission.LAB_RESULT_WRITE)
    result = get_or_404(session, LabResult, result_id, actor)
    version = session.scalar(
        scoped(version_stmt, actor),
        reader(actor, result_id=result.id, version=result.current_version),
    )
    assert version is not None
    return attach_report(session, actor, version, upload)


def _attach(
    session: Session, actor: Actor, version: LabResultVersion, row: Attachment
) -> Attachment:
    row.lab_result_version_id = version.id
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.UPDATE,
        Entity.LAB_RESULT,
        version.lab_result_id,
        patient_id=version.patient_id,
        detail={"version": version.version, "attachment": row.id},
    )
    return row

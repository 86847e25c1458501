"""Patients and their lab results (docs/api.md): the roster, one profile, a patient's results,
one result with its history, a new result and a correction or amendment.

Every rule (who may see or change which patient or result, what a patient never sees, the
catalog's defaults, when a reason is needed) is the patients' and labs' services'; this module
parses, calls one verb and shapes the answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import Response
from pydantic import Field
from sqlalchemy import Row
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from portal.access import Actor, Permission, get_or_404, require
from portal.api import bp
from portal.api.messaging import AttachmentOut
from portal.api.operations import operation
from portal.api.schemas import (
    FileIn,
    Instant,
    InstantIn,
    PageOut,
    PageQuery,
    PatientOut,
    Record,
    Schema,
    with_example,
)
from portal.audit import audited
from portal.db import utcnow
from portal.models import (
    Attachment,
    AuditAction,
    Entity,
    Flag,
    LabResult,
    LabResultVersion,
    PatientProfile,
    ResultStatus,
    Role,
    Visibility,
)
from portal.services import attachments, labs, paging
from portal.services import patients as roster
from portal.web.audit_reads import shows_patient
from portal.web.downloads import content_disposition

PATIENTS = "Patients"
RESULTS = "Lab results"


# --- Shapes ------------------------------------------------------------------------------------


class PatientListQuery(PageQuery):
    """`q` matches anywhere in the name or the medical record number."""

    q: str | None = Field(default=None, max_length=100)


#: The examples' result: a fasting glucose within its reference range.
_GLUCOSE = {
    "id": 4812,
    "createdAt": "2026-11-02T08:55:12Z",
    "updatedAt": "2026-11-02T09:40:00Z",
    "patientId": 5,
    "testCode": "2345-7",
    "testName": "Glucose",
    "category": "chemistry",
    "status": "final",
    "resultValue": "92",
    "units": "mg/dL",
    "referenceRange": "70-99",
    "flag": "normal",
    "visibility": "shared",
    "publishedAt": "2026-11-02T09:40:00Z",
    "collectedAt": "2026-11-02T07:15:00Z",
    "version": 1,
    "orderedBy": 2,
}
#: The examples' correction: an HbA1c above its range, run again after a recalibration.
_HBA1C_FIRST = {
    "id": 9377,
    "version": 1,
    "status": "final",
    "resultValue": "6.4",
    "units": "%",
    "referenceRange": "4.0-5.6",
    "flag": "high",
    "visibility": "shared",
    "reason": None,
    "publishedAt": "2026-11-02T09:40:00Z",
    "publishedBy": 2,
    "createdAt": "2026-11-02T09:40:00Z",
    "updatedAt": "2026-11-02T09:40:00Z",
    "releasedAt": "2026-11-02T09:40:00Z",
    "releaseDueAt": None,
    "reviewedBy": None,
    "reviewedAt": None,
    "attachments": [],
}
_HBA1C_CORRECTED = {
    **_HBA1C_FIRST,
    "id": 9402,
    "version": 2,
    "status": "corrected",
    "resultValue": "5.9",
    "reason": "The analyser was recalibrated; the sample was run again.",
    "publishedAt": "2026-11-03T11:05:00Z",
    "createdAt": "2026-11-03T11:05:00Z",
    "updatedAt": "2026-11-03T11:05:00Z",
    "releasedAt": "2026-11-03T11:05:00Z",
}


class LabResultOut(Record):
    """A result as the caller sees it: its newest version the caller may see."""

    model_config = with_example(_GLUCOSE)

    patient_id: int
    test_code: str
    test_name: str
    category: str | None
    status: ResultStatus
    result_value: str
    units: str | None
    reference_range: str | None
    #: How the value sits against its reference range, in words ("high", "normal"...).
    flag: Flag
    #: "provider_only" versions are never shown to the patient.
    visibility: Visibility
    #: When this version was published (null while preliminary).
    published_at: Instant | None
    #: When the sample was taken: lists are ordered on it (newest first), and a correction
    #: keeps it. `units` is the UCUM code (`10*3/uL`), as entered.
    collected_at: Instant
    #: The number of the version shown.
    version: int
    #: The user id of the provider who ordered the test.
    ordered_by: int | None


class LabResultVersionOut(Schema):
    """One immutable version of a result: a correction or amendment adds one. The release
    fields say when it reached (or will reach) the patient and who reviewed it."""

    model_config = with_example(_HBA1C_CORRECTED)

    id: int
    version: int
    status: ResultStatus
    result_value: str
    units: str | None
    reference_range: str | None
    flag: Flag
    visibility: Visibility
    #: Why this version exists (corrections and amendments).
    reason: str | None
    published_at: Instant | None
    #: The user id of the provider who published it.
    published_by: int | None
    created_at: Instant
    #: A version's content never changes; this is when it was last released or reviewed.
    updated_at: Instant
    #: When the patient could first see it (null: not released to them).
    released_at: Instant | None = None
    #: When it will be released with no review (a clinician's hold ending, or a category
    #: timer), while it waits.
    release_due_at: Instant | None = None
    #: The user id of the provider who reviewed and released it.
    reviewed_by: int | None = None
    reviewed_at: Instant | None = None
    #: Report files of this version (download: `GET /attachments/{id}`).
    attachments: list[AttachmentOut] = Field(default_factory=list)


class HoldIn(Schema):
    """A clinician's hold on one result for this patient (the information-blocking rule's
    preventing-harm exception, 45 CFR 171.201): the harm it prevents, and when it ends (at
    most 30 days ahead). At that time the result is released with no further step."""

    model_config = with_example(
        {
            "reason": "A genetic result is explained in person first: a visit is booked.",
            "until": "2026-11-09T09:00:00Z",
        }
    )

    #: Required: a hold without a recorded reason is refused (422).
    reason: str | None = Field(default=None, max_length=2000)
    until: InstantIn | None = None


class HoldOut(Schema):
    """Who holds a result back from the patient, why, and until when."""

    model_config = with_example(
        {
            "heldBy": 2,
            "reason": "A genetic result is explained in person first: a visit is booked.",
            "until": "2026-11-09T09:00:00Z",
            "active": True,
        }
    )

    #: The user id of the clinician who placed it.
    held_by: int | None
    reason: str | None
    until: Instant
    #: False once `until` has passed.
    active: bool


class LabResultDetailOut(LabResultOut):
    """A result with every version of it the caller may see, newest first."""

    model_config = with_example(
        {
            "id": 4815,
            "createdAt": "2026-11-02T08:55:12Z",
            "updatedAt": "2026-11-03T11:05:00Z",
            "patientId": 5,
            "testCode": "4548-4",
            "testName": "Hemoglobin A1c",
            "category": "chemistry",
            "status": "corrected",
            "resultValue": "5.9",
            "units": "%",
            "referenceRange": "4.0-5.6",
            "flag": "high",
            "visibility": "shared",
            "publishedAt": "2026-11-03T11:05:00Z",
            "collectedAt": "2026-11-02T07:15:00Z",
            "version": 2,
            "orderedBy": 2,
            "versions": [_HBA1C_CORRECTED, _HBA1C_FIRST],
            "hold": None,
        }
    )

    versions: list[LabResultVersionOut]
    #: A clinician's hold on the result (shown to its care team; null when none was placed).
    hold: HoldOut | None = None


class LabResultListQuery(PageQuery):
    """`status` is that of the version shown; `testCode` a LOINC code such as 2345-7."""

    status: ResultStatus | None = None
    test_code: str | None = Field(default=None, max_length=32)


class LabResultIn(Schema):
    """A new result. Blank `units` or `referenceRange` take the catalog's for a known code."""

    model_config = with_example(
        {
            "testCode": "2345-7",
            "testName": "Glucose",
            "resultValue": "92",
            "units": "mg/dL",
            "referenceRange": "70-99",
            "status": "final",
            "visibility": "shared",
            "collectedAt": "2026-11-02T07:15:00Z",
        }
    )

    test_code: str = Field(min_length=1, max_length=32)
    test_name: str = Field(max_length=200)
    result_value: str = Field(max_length=200)
    units: str | None = Field(default=None, max_length=40)
    reference_range: str | None = Field(default=None, max_length=80)
    status: Literal["preliminary", "final"]
    visibility: Visibility = Visibility.SHARED
    #: When the sample was taken (not in the future); omitted: now less the test's usual
    #: turnaround in the catalog.
    collected_at: InstantIn | None = None
    #: A clinician's hold, placed before the result can reach the patient.
    hold: HoldIn | None = None


class LabResultVersionIn(Schema):
    """A new version of a result; the earlier versions stay readable. `final` finalises a
    preliminary result (publishing it); `corrected` and `amended` change a published one and
    need a `reason`."""

    model_config = with_example(
        {
            "resultValue": "5.9",
            "units": "%",
            "referenceRange": "4.0-5.6",
            "status": "corrected",
            "reason": "The analyser was recalibrated; the sample was run again.",
        }
    )

    result_value: str = Field(max_length=200)
    units: str | None = Field(default=None, max_length=40)
    reference_range: str | None = Field(default=None, max_length=80)
    status: Literal["final", "corrected", "amended"]
    #: Shown to the patient with the result; required once the result was published.
    reason: str | None = Field(default=None, max_length=2000)
    #: Omitted: the same as the version it follows.
    visibility: Visibility | None = None
    #: A clinician's hold (finalising a preliminary result that has not reached the patient).
    hold: HoldIn | None = None


def _result_out(result: LabResult, version: LabResultVersion) -> LabResultOut:
    return LabResultOut(
        id=result.id,
        created_at=result.created_at,
        updated_at=result.updated_at,
        patient_id=result.patient_id,
        test_code=result.test_code,
        test_name=result.test_name,
        category=result.category,
        status=version.status,
        result_value=version.result_value,
        units=version.units,
        reference_range=version.reference_range,
        flag=version.flag,
        visibility=version.visibility,
        published_at=version.published_at,
        collected_at=result.collected_at,
        version=version.version,
        ordered_by=result.ordered_by_id,
    )


#: The answer's field for each column of the list's plain rows (`labs.LAB_ROW_COLUMNS`), in
#: their order: the same names, but for who ordered the test.
_ROW_FIELDS = tuple(
    {"ordered_by_id": "ordered_by"}.get(column.key, column.key) for column in labs.LAB_ROW_COLUMNS
)


def _page_out(page: paging.Page[Row[Any]]) -> PageOut[LabResultOut]:
    """The list's plain rows as the answer, validated in one pass by pydantic-core (`zip` stops
    at the last field: the row's `sort_key` stays out)."""
    items = [dict(zip(_ROW_FIELDS, row, strict=False)) for row in page.rows]
    return PageOut[LabResultOut].model_validate({"items": items, "next_cursor": page.next_cursor})


def _version_out(
    version: LabResultVersion, files: list[Attachment] | None = None
) -> LabResultVersionOut:
    changed = [t for t in (version.released_at, version.reviewed_at) if t is not None]
    return LabResultVersionOut(
        id=version.id,
        version=version.version,
        status=version.status,
        result_value=version.result_value,
        units=version.units,
        reference_range=version.reference_range,
        flag=version.flag,
        visibility=version.visibility,
        reason=version.change_reason,
        published_at=version.published_at,
        published_by=version.published_by_id,
        created_at=version.created_at,
        updated_at=max([version.created_at, *changed], key=datetime.timestamp),
        released_at=version.released_at,
        release_due_at=version.release_due_at,
        reviewed_by=version.reviewed_by_id,
        reviewed_at=version.reviewed_at,
        attachments=[_file_out(a) for a in files or []],
    )


def _file_out(row: Attachment) -> AttachmentOut:
    return AttachmentOut(
        id=row.id, filename=row.filename, content_type=row.content_type, size=row.size_bytes
    )


def _hold_out(actor: Actor, result: LabResult) -> HoldOut | None:
    """The hold, for the care team only: a patient reads a result once it is released, and
    the placeholders of held ones (`labs.held_results`) say who holds them and until when."""
    if result.held_until is None or actor.role is Role.PATIENT:
        return None
    return HoldOut(
        held_by=result.held_by_id,
        reason=result.hold_reason,
        until=result.held_until,
        active=result.held_until > utcnow(),
    )


def _detail(session: Session, actor: Actor, result_id: int) -> LabResultDetailOut:
    result, versions = labs.result_history(session, actor, result_id)
    shows_patient(result.patient_id)
    files = labs.attachments_of(session, actor, [v.id for v in versions])
    shown = _result_out(result, versions[0])
    return LabResultDetailOut(
        **dict(shown),
        versions=[_version_out(v, files.get(v.id)) for v in versions],
        hold=_hold_out(actor, result),
    )


def _hold(body: HoldIn | None) -> labs.Hold | None:
    return None if body is None else labs.Hold(body.reason, body.until)


def _input(
    body: LabResultIn | LabResultVersionIn, visibility: Visibility | None
) -> labs.ResultInput:
    return labs.ResultInput(
        result_value=body.result_value,
        units=body.units,
        reference_range=body.reference_range,
        status=ResultStatus(body.status),
        visibility=visibility,
    )


# --- Patients ----------------------------------------------------------------------------------


@operation(
    bp,
    "GET",
    "/patients",
    summary="Patients",
    tag=PATIENTS,
    query=PatientListQuery,
    response=PageOut[PatientOut],
    errors=(403,),
)
@audited(AuditAction.VIEW, Entity.PATIENT_LIST)
def list_patients(
    session: Session, actor: Actor, *, query: PatientListQuery
) -> PageOut[PatientOut]:
    """A provider's assigned patients (an admin: every patient), A to Z by name."""
    page = roster.search(session, actor, query.q, cursor=query.cursor, limit=query.limit)
    return PageOut[PatientOut](
        items=[PatientOut.model_validate(row.patient) for row in page.rows],
        next_cursor=page.next_cursor,
    )


@operation(
    bp,
    "GET",
    "/patients/<int:patient_id>",
    summary="One patient",
    tag=PATIENTS,
    response=PatientOut,
)
@audited(AuditAction.VIEW, Entity.PATIENT_PROFILE, id_arg="patient_id")
def get_patient(session: Session, actor: Actor, patient_id: int) -> PatientOut:
    """The patient themself, an assigned provider or an admin; 404 for anyone else."""
    return PatientOut.model_validate(get_or_404(session, PatientProfile, patient_id, actor))


# --- Lab results -------------------------------------------------------------------------------


@operation(
    bp,
    "GET",
    "/patients/<int:patient_id>/lab-results",
    summary="A patient's lab results",
    tag=RESULTS,
    query=LabResultListQuery,
    response=PageOut[LabResultOut],
    errors=(403,),
)
@audited(AuditAction.VIEW, Entity.LAB_RESULT_LIST)
def list_lab_results(
    session: Session, actor: Actor, patient_id: int, *, query: LabResultListQuery
) -> PageOut[LabResultOut]:
    """The newest version the caller may see of each result, newest sample first (by
    `collectedAt`: a correction keeps its place). One query per page."""
    filters = labs.LabFilter(
        test_code=(query.test_code or "").strip() or None,
        patient_id=patient_id,
        status=query.status,
    )
    page = labs.latest_rows(session, actor, filters, cursor=query.cursor, limit=query.limit)
    return _page_out(page)


@operation(
    bp,
    "POST",
    "/patients/<int:patient_id>/lab-results",
    summary="Publish a lab result",
    tag=RESULTS,
    body=LabResultIn,
    response=LabResultOut,
    status=201,
    idempotent=True,
    errors=(403, 409),
)
def create_lab_result(
    session: Session, actor: Actor, patient_id: int, *, body: LabResultIn
) -> LabResultOut:
    """An assigned provider saves a preliminary result or publishes a final one; it reaches
    the patient as the release policy of its category says."""
    result = labs.create_result(
        session,
        actor,
        patient_id,
        test_code=body.test_code,
        test_name=body.test_name,
        data=_input(body, body.visibility),
        collected_at=body.collected_at,
        hold=_hold(body.hold),
    )
    _result, versions = labs.result_history(session, actor, result.id)
    return _result_out(result, versions[0])


@operation(
    bp,
    "GET",
    "/lab-results/<int:result_id>",
    summary="One lab result and its history",
    tag=RESULTS,
    response=LabResultDetailOut,
    errors=(403,),
)
@audited(AuditAction.VIEW, Entity.LAB_RESULT, id_arg="result_id")
def get_lab_result(session: Session, actor: Actor, result_id: int) -> LabResultDetailOut:
    """The newest version the caller may see, and every version they may see, newest first,
    each with its report files; for the care team, the release state and any hold."""
    return _detail(session, actor, result_id)


@operation(
    bp,
    "POST",
    "/lab-results/<int:result_id>/versions",
    summary="Finalise, correct or amend a lab result",
    tag=RESULTS,
    body=LabResultVersionIn,
    response=LabResultDetailOut,
    status=201,
    idempotent=True,
    errors=(403, 409),
)
def add_lab_result_version(
    session: Session, actor: Actor, result_id: int, *, body: LabResultVersionIn
) -> LabResultDetailOut:
    """An assigned provider adds a new version: `final` publishes a preliminary result (it
    reaches the patient at once unless the patient asked to wait for a review or a hold is
    placed), `corrected`/`amended` change a published one; the earlier versions stay readable,
    and the patient is told when the new one reaches them."""
    data = _input(body, body.visibility)
    if data.status is ResultStatus.FINAL:
        labs.finalize(session, actor, result_id, data, hold=_hold(body.hold))
    else:
        labs.add_version(session, actor, result_id, data, reason=body.reason, hold=_hold(body.hold))
    return _detail(session, actor, result_id)


@operation(
    bp,
    "POST",
    "/lab-results/<int:result_id>/hold",
    summary="Hold a lab result back from the patient",
    tag=RESULTS,
    body=HoldIn,
    response=LabResultDetailOut,
    idempotent=True,
    errors=(403, 409),
)
def hold_lab_result(
    session: Session, actor: Actor, result_id: int, *, body: HoldIn
) -> LabResultDetailOut:
    """An assigned provider holds one result of one patient back, to prevent harm: the
    reason is required and recorded, the hold ends at `until` (at most 30 days ahead) and
    the patient sees who holds it and until when. Refused once the patient has seen it."""
    labs.hold_result(session, actor, result_id, reason=body.reason, until=body.until)
    return _detail(session, actor, result_id)


@operation(
    bp,
    "POST",
    "/lab-results/<int:result_id>/release",
    summary="Review and release a held lab result",
    tag=RESULTS,
    response=LabResultDetailOut,
    idempotent=True,
    errors=(403, 409),
)
def release_lab_result(session: Session, actor: Actor, result_id: int) -> LabResultDetailOut:
    """An assigned provider reviews the newest version waiting for release (held by a
    clinician, a category rule or the patient's wish to wait for a review) and releases it
    to the patient now; 422 when nothing waits. As the result page's "Review and release"."""
    labs.review_and_release(session, actor, result_id)
    return _detail(session, actor, result_id)


@operation(
    bp,
    "POST",
    "/lab-results/<int:result_id>/attachments",
    summary="Attach a report file to a lab result",
    tag=RESULTS,
    body=FileIn,
    response=AttachmentOut,
    status=201,
    idempotent=True,
    errors=(403, 409),
)
def attach_lab_report(
    session: Session, actor: Actor, result_id: int, *, body: FileIn
) -> AttachmentOut:
    """An assigned provider attaches a report (PDF, PNG or JPEG, within the pages' size
    limit) to the newest version; it follows that version's visibility and release."""
    row = labs.attach_current_report(
        session, actor, result_id, attachments.Upload(body.filename, body.content)
    )
    return _file_out(row)


@operation(
    bp,
    "GET",
    "/attachments/<int:attachment_id>",
    summary="Download an attachment",
    tag=RESULTS,
    response=None,
)
@audited(AuditAction.DOWNLOAD, Entity.ATTACHMENT, id_arg="attachment_id")
def download_attachment(session: Session, actor: Actor, attachment_id: int) -> Response:
    """The file of a lab report or a message (`application/pdf`, `image/png`, `image/jpeg`),
    for whoever may see the record it belongs to (404 for anyone else, and for a held or
    provider-only result's file to the patient)."""
    require(actor, Permission.LAB_RESULT_READ)
    row = get_or_404(session, Attachment, attachment_id, actor)
    shows_patient(row.patient_id)
    try:
        data = attachments.decrypt(row)
    except attachments.TamperedAttachment as exc:
        raise NotFound() from exc
    response = Response(data, mimetype=row.content_type)
    response.headers["Content-Disposition"] = content_disposition(row.filename)
    response.headers["Content-Length"] = str(len(data))
    return response

"""Lab results: publish, correct or amend (a new immutable version), release, list and read."""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask_babel import gettext, ngettext
from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    String,
    and_,
    bindparam,
    func,
    select,
)
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from portal import audit
from portal.access import (
    MAX_ID,
    Actor,
    Permission,
    RoleScope,
    get_or_404,
    reader,
    require,
    require_visible,
    scoped,
    unscoped,
)
from portal.db import UTCDateTime, utcnow
from portal.models import (
    Attachment,
    AuditAction,
    EventType,
    Flag,
    LabResult,
    LabResultVersion,
    PatientProfile,
    ProviderProfile,
    ReleaseMode,
    ReleasePolicy,
    ReleasePreference,
    ResultStatus,
    Role,
    Visibility,
)
from portal.services import attachments, notifications, paging
from portal.services.catalog import BY_CODE, TestDefinition
from portal.services.errors import N_, ServiceError

_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_RANGE = re.compile(rf"^\s*({_NUMBER})\s*[-–]\s*({_NUMBER})\s*$")
_UPPER = re.compile(rf"^\s*(?:<|<=|≤)\s*({_NUMBER})\s*$")
_LOWER = re.compile(rf"^\s*(?:>|>=|≥)\s*({_NUMBER})\s*$")
_VALUE = re.compile(rf"^\s*[<>]?\s*({_NUMBER})\s*$")


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


def parse_range(text: str | None) -> tuple[float | None, float | None]:
    """`"4.0-11.0"` → (4.0, 11.0); `"<200"` → (None, 200); `">40"` → (40, None)."""
    if not text:
        return None, None
    if m := _RANGE.match(text):
        return float(m[1]), float(m[2])
    if m := _UPPER.match(text):
        return None, float(m[1])
    if m := _LOWER.match(text):
        return float(m[1]), None
    return None, None


def parse_value(text: str) -> float | None:
    m = _VALUE.match(text)
    return float(m[1]) if m else None


#: The largest size a numeric value or range bound may have: past any real result in any unit
#: (red cells are about 5e12 per litre), and small enough for a chart to step between values.
MAX_MAGNITUDE = 1e15
TOO_LARGE = f"Enter a number between -{MAX_MAGNITUDE:,.0f} and {MAX_MAGNITUDE:,.0f}."


def _sane(number: float | None) -> bool:
    return number is None or (math.isfinite(number) and abs(number) <= MAX_MAGNITUDE)


def _check_numbers(data: ResultInput) -> None:
    """Refuse a value or range bound that parses to infinity or is too large to be a result
    (it would be flagged, charted and sent as that number)."""
    if not _sane(parse_value(data.result_value)):
        raise LabInputError("result_value", TOO_LARGE)
    if not all(_sane(bound) for bound in parse_range(data.reference_range)):
        raise LabInputError("reference_range", TOO_LARGE)


def compute_flag(
    value: float | None,
    low: float | None,
    high: float | None,
    critical_low: float | None = None,
    critical_high: float | None = None,
) -> Flag:
    if value is None or (low is None and high is None):
        return Flag.UNKNOWN
    if critical_low is not None and value < critical_low:
        return Flag.CRITICAL_LOW
    if critical_high is not None and value > critical_high:
        return Flag.CRITICAL_HIGH
    if low is not None and value < low:
        return Flag.LOW
    if high is not None and value > high:
        return Flag.HIGH
    return Flag.NORMAL


class ReleaseState(enum.Enum):
    """Whether the patient sees a result version, in the words of the chart's column.

    `SCHEDULED` is shown followed by the version's `release_due_at`.
    """

    CARE_TEAM_ONLY = N_("No: care team only")
    RELEASED = N_("Yes")
    PRELIMINARY = N_("No: preliminary")
    SCHEDULED = "From"  # pages write "From <date>" themselves
    HELD = N_("No: held for review")

    @property
    def wording(self) -> str:
        """The column's words in the reader's language (the value stays English)."""
        return gettext(self.value)

    @property
    def awaiting_release(self) -> bool:
        """Published and shared, but not yet released (by the timer or by a review)."""
        return self in (ReleaseState.SCHEDULED, ReleaseState.HELD)


def release_state(version: LabResultVersion) -> ReleaseState:
    """The release state of one version: the one rule pages, API and SQL agree on.

    `released_to_patient()` and `awaiting_release()` are its SQL twins (a test holds them to
    it on every demo version).
    """
    if version.visibility is not Visibility.SHARED:
        return ReleaseState.CARE_TEAM_ONLY
    if version.released_at is not None:
        return ReleaseState.RELEASED
    if version.status is ResultStatus.PRELIMINARY:
        return ReleaseState.PRELIMINARY
    if version.release_due_at is not None:
        return ReleaseState.SCHEDULED
    return ReleaseState.HELD


def released_to_patient() -> ColumnElement[bool]:
    """SQL for `release_state(version) is ReleaseState.RELEASED`."""
    return and_(
        LabResultVersion.visibility == Visibility.SHARED,
        LabResultVersion.released_at.is_not(None),
    )


def awaiting_release() -> ColumnElement[bool]:
    """SQL for `release_state(version).awaiting_release` (SCHEDULED or HELD)."""
    return and_(
        LabResultVersion.visibility == Visibility.SHARED,
        LabResultVersion.released_at.is_(None),
        LabResultVersion.status != ResultStatus.PRELIMINARY,
    )


def _auto_release_delay(
    policy: ReleasePolicy | None, preference: ReleasePreference
) -> timedelta | None:
    """How long after publishing a shared result may reach the patient with no review, or None
    when only a review releases it: the one rule for publishing and for the timer.

    The sensitive flag is read before the mode: a sensitive category is never released
    without review, whatever mode it also has.
    """
    if preference is ReleasePreference.AFTER_REVIEW:
        return None
    if policy is None:  # a category without a row releases on publishing
        return timedelta(0)
    if policy.never_auto_release:
        return None
    if policy.mode is ReleaseMode.ON_PUBLISH:
        return timedelta(0)
    if policy.mode is ReleaseMode.AUTO_AFTER_DELAY:
        return timedelta(hours=policy.delay_hours or 0)
    return None


def _release_times(
    session: Session, patient: PatientProfile, category: str, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """(released_at, release_due_at) for a result published now, per policy and preference."""
    delay = _auto_release_delay(release_policy_for(session, category), patient.release_preference)
    if delay is None:
        return None, None
    if not delay:
        return now, None
    return None, now + delay


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
            released_at, due_at = _release_times(session, patient, result.category, now)
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


def _announce_release(session: Session, result: LabResult, version: LabResultVersion) -> None:
    corrected = version.version > 1 and version.status in (
        ResultStatus.CORRECTED,
        ResultStatus.AMENDED,
    )
    notifications.stage(
        session,
        [notifications.patient_user_id(session, result.patient_id)],
        type=EventType.LAB_RESULT_PUBLISHED,
        entity_id=result.id,
        patient_id=result.patient_id,
        text=f"{'Corrected' if corrected else 'New'} lab result: {result.test_name}",
    )


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
) -> LabResult:
    """A new result for an assigned patient, saved as preliminary or published.

    Blank units or reference range take those of the test in the LOINC catalog (when
    `test_code` is in it). `collected_at` is when the sample was taken (not after now);
    without it, now less the catalog's usual turnaround for the test (now for a test the
    catalog does not know). `report`, when given, is attached to the first version in the same
    change; a file that cannot be attached is refused with `LabInputError` on "report" before
    anything is written.
    """
    require(actor, Permission.LAB_RESULT_WRITE)
    patient = get_or_404(session, PatientProfile, patient_id, actor)
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
    version = _new_version(
        session, actor, result, patient, data, number=1, reason=None, previously_shared=False
    )
    audit.record(
        session,
        actor_id=actor.user_id,
        actor_role=actor.role,
        action=AuditAction.PUBLISH if version.published_at else AuditAction.CREATE,
        entity_type="lab_result",
        entity_id=result.id,
        patient_id=patient.id,
        detail={"version": 1, "status": str(data.status)},
    )
    if version.released_at is not None:
        _announce_release(session, result, version)
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
) -> LabResultVersion:
    """Correct, amend, finalise or cancel a result; earlier versions stay readable.

    `report`, when given, is attached to the new version in the same change (refused with
    `LabInputError` on "report", as for `create_result`).
    """
    require(actor, Permission.LAB_RESULT_WRITE)
    result = get_or_404(session, LabResult, result_id, actor)
    patient = get_or_404(session, PatientProfile, result.patient_id, actor)
    previous = session.scalar(
        scoped(_version_stmt, actor),
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
        actor_id=actor.user_id,
        actor_role=actor.role,
        action=AuditAction.CORRECT if was_published else AuditAction.PUBLISH,
        entity_type="lab_result",
        entity_id=result.id,
        patient_id=result.patient_id,
        detail={"version": version.version, "status": str(data.status)},
    )
    if version.released_at is not None:
        _announce_release(session, result, version)
    if report_row is not None:
        _attach(session, actor, version, report_row)
    return version


def release_version(session: Session, actor: Actor | None, version: LabResultVersion) -> None:
    """Release a held version to the patient (review by `actor`, or the timer when None)."""
    if version.released_at is not None or version.visibility is not Visibility.SHARED:
        return
    now = utcnow()
    result = session.scalar(
        unscoped(select(LabResult).where(LabResult.id == version.lab_result_id), "release")
    )
    assert result is not None
    version.released_at = now
    if actor is not None:
        version.reviewed_by_id = actor.user_id
        version.reviewed_at = now
    if result.shared_version is None or result.shared_version < version.version:
        result.shared_version = version.version
        result.shared_at = now
    audit.record(
        session,
        actor_id=actor.user_id if actor else None,
        actor_role=actor.role if actor else "system",
        action=AuditAction.RELEASE,
        entity_type="lab_result",
        entity_id=result.id,
        patient_id=result.patient_id,
        detail={"version": version.version, "by": "review" if actor else "timer"},
    )
    _announce_release(session, result, version)
    session.flush()


def release_due(session: Session, now: datetime | None = None) -> int:
    """Release every held version whose automatic release time has come; returns how many.

    The time stored at publishing only picks the candidates: each is released only if the
    category's policy and the patient's preference read now still release it by now. A
    category declared sensitive or held for review later, or a patient who has since asked
    for review first, keeps the result held for a provider (and a longer delay is kept to).
    Refusing here rather than clearing timers when a policy changes is the one check that a
    publication racing the change, or a preference changed on the profile page, cannot miss.
    """
    now = now or utcnow()
    stmt = (
        select(LabResultVersion, LabResult.category, PatientProfile.release_preference)
        .join(LabResult, LabResult.id == LabResultVersion.lab_result_id)
        .join(PatientProfile, PatientProfile.id == LabResultVersion.patient_id)
        .where(awaiting_release(), LabResultVersion.release_due_at <= now)
    )
    policies = {p.category: p for p in session.scalars(select(ReleasePolicy))}
    released = 0
    for version, category, preference in session.execute(unscoped(stmt, "release timer")).all():
        delay = _auto_release_delay(policies.get(category), preference)
        published = version.published_at
        if delay is None or published is None or published + delay > now:
            continue
        release_version(session, None, version)
        released += 1
    return released


def reschedule_held(session: Session, category: str) -> int:
    """After `category`'s policy changed: each of its held results gets the release time the
    policy and the patient's preference give it now, or none (it waits for a review), so what
    staff read ("released automatically on ...") is what will happen; returns how many
    changed. `release_due` still checks again when the time comes."""
    stmt = (
        select(LabResultVersion, PatientProfile.release_preference)
        .join(LabResult, LabResult.id == LabResultVersion.lab_result_id)
        .join(PatientProfile, PatientProfile.id == LabResultVersion.patient_id)
        .where(awaiting_release(), LabResult.category == category)
    )
    policy = release_policy_for(session, category)
    changed = 0
    for version, preference in session.execute(unscoped(stmt, "release timer")).all():
        delay = _auto_release_delay(policy, preference)
        due = (
            None if delay is None or version.published_at is None else version.published_at + delay
        )
        if due != version.release_due_at:
            version.release_due_at = due
            changed += 1
    session.flush()
    return changed


@dataclass(frozen=True, slots=True)
class LabRow:
    result: LabResult
    version: LabResultVersion


#: The lab list as plain rows (`latest_rows`): the result's columns and those of the version
#: shown, named as in the models, plus `sort_key` (the list's order). No ORM objects are made.
LAB_ROW_COLUMNS = (
    LabResult.id,
    LabResult.created_at,
    LabResult.updated_at,
    LabResult.patient_id,
    LabResult.test_code,
    LabResult.test_name,
    LabResult.category,
    LabResult.ordered_by_id,
    LabResult.collected_at,
    LabResultVersion.status,
    LabResultVersion.result_value,
    LabResultVersion.units,
    LabResultVersion.reference_range,
    LabResultVersion.flag,
    LabResultVersion.visibility,
    LabResultVersion.published_at,
    LabResultVersion.version,
)


def _latest_unscoped(role: Role, rows: bool = False):  # type: ignore[no-untyped-def]
    """Each result joined to the newest version the role may see, newest collected first: as
    the two ORM objects, or (`rows`) as the plain columns of `LAB_ROW_COLUMNS`. One builder for
    both, so the join, the order and the scope that `rs.scope` adds are the same.

    Every role orders by collection time: a correction (or a late release) of an old sample
    keeps its place in time instead of reading as the newest value."""
    version_col = LabResult.shared_version if role is Role.PATIENT else LabResult.current_version
    sort_col = LabResult.collected_at
    entities = (LabResult, LabResultVersion)
    stmt = (
        select(*((*LAB_ROW_COLUMNS, sort_col.label("sort_key")) if rows else entities))
        .join(
            LabResultVersion,
            and_(
                LabResultVersion.lab_result_id == LabResult.id,
                LabResultVersion.version == version_col,
            ),
        )
        .order_by(sort_col.desc(), LabResult.id.desc())
    )
    return stmt, sort_col


def _latest_stmt(
    rs: RoleScope, by_patient: bool, by_test: bool, skip: bool
) -> Select[LabResult, LabResultVersion]:
    """Each result with the newest version the reader may see, newest first: `:limit` rows
    (after the first `:offset` when `skip`), of patient `:patient_id` when `by_patient`, of
    test `:test_code` when `by_test`."""
    stmt, _sort_col = _latest_unscoped(rs.role)
    if by_patient:
        stmt = stmt.where(LabResult.patient_id == bindparam("patient_id", type_=Integer))
    if by_test:
        stmt = stmt.where(LabResult.test_code == bindparam("test_code", type_=String))
    stmt = rs.scope(stmt, LabResult).limit(bindparam("limit", type_=Integer))
    if skip:
        stmt = stmt.offset(bindparam("offset", type_=Integer))
    return stmt


def list_latest(
    session: Session,
    actor: Actor,
    *,
    patient_id: int | None = None,
    test_code: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> list[LabRow]:
    """The newest `limit` results the actor may see (of one patient, of one test), each with
    its newest version the actor may see. One query; its statement is built once per role
    and combination of filters (the dashboard's "recent results" runs it on every visit)."""
    filters = (patient_id is not None, test_code is not None, offset != 0)
    stmt = scoped(_latest_stmt, actor, *filters)
    params = reader(actor, patient_id=patient_id, test_code=test_code, limit=limit, offset=offset)
    return [LabRow(r, v) for r, v in session.execute(stmt, params)]


def _version_stmt(rs: RoleScope) -> Select[LabResultVersion]:
    """Version `:version` of result `:result_id`."""
    stmt = select(LabResultVersion).where(
        LabResultVersion.lab_result_id == bindparam("result_id", type_=Integer),
        LabResultVersion.version == bindparam("version", type_=Integer),
    )
    return rs.scope(stmt, LabResultVersion)


def _versions_stmt(rs: RoleScope) -> Select[LabResultVersion]:
    """The versions of result `:result_id`, newest first."""
    stmt = (
        select(LabResultVersion)
        .where(LabResultVersion.lab_result_id == bindparam("result_id", type_=Integer))
        .order_by(LabResultVersion.version.desc())
    )
    return rs.scope(stmt, LabResultVersion)


def versions_of(session: Session, actor: Actor, result: LabResult) -> list[LabResultVersion]:
    """The versions of `result` the actor may see, newest first."""
    params = reader(actor, result_id=result.id)
    return list(session.scalars(scoped(_versions_stmt, actor), params))


# --- Staff side (helper "staff"): review and release, held-result placeholders, reports ---


class ReleaseError(ServiceError):
    """A release that the result's state does not allow."""

    def __init__(self, message: str) -> None:
        super().__init__("release", message)


def _held_version_stmt(rs: RoleScope) -> Select[LabResultVersion]:
    """The newest version of result `:result_id` awaiting release."""
    stmt = (
        select(LabResultVersion)
        .where(
            LabResultVersion.lab_result_id == bindparam("result_id", type_=Integer),
            awaiting_release(),
        )
        .order_by(LabResultVersion.version.desc())
        .limit(1)
    )
    return rs.scope(stmt, LabResultVersion)


def held_version(session: Session, actor: Actor, result: LabResult) -> LabResultVersion | None:
    """The newest version of `result` awaiting release to the patient (`awaiting_release()`)."""
    params = reader(actor, result_id=result.id)
    return session.scalar(scoped(_held_version_stmt, actor), params)


def review_and_release(session: Session, actor: Actor, result_id: int) -> LabResultVersion:
    """An assigned provider reviews a held result and releases it to the patient now."""
    require(actor, Permission.LAB_RESULT_WRITE)
    result = get_or_404(session, LabResult, result_id, actor)
    version = held_version(session, actor, result)
    if version is None:
        raise ReleaseError("This result has nothing waiting to be released.")
    release_version(session, actor, version)
    return version


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


def _attach(
    session: Session, actor: Actor, version: LabResultVersion, row: Attachment
) -> Attachment:
    row.lab_result_version_id = version.id
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor_id=actor.user_id,
        actor_role=actor.role,
        action=AuditAction.UPDATE,
        entity_type="lab_result",
        entity_id=version.lab_result_id,
        patient_id=version.patient_id,
        detail={"version": version.version, "attachment": row.id},
    )
    return row


def release_policy_for(session: Session, category: str) -> ReleasePolicy | None:
    return session.scalar(select(ReleasePolicy).where(ReleasePolicy.category == category))


def describe_policy(policy: ReleasePolicy | None) -> str:
    """The release rule in words, for the result form and the patient's placeholder."""
    delay = _auto_release_delay(policy, ReleasePreference.AS_SOON_AS_ALLOWED)
    if delay is None:
        return gettext(
            "Held until a provider has reviewed it with the patient in mind, then released."
        )
    if not delay:
        return gettext("Released to the patient as soon as it is published.")
    return ngettext(
        "Released to the patient %(num)d hour after publishing, or earlier when a provider "
        "reviews it.",
        "Released to the patient %(num)d hours after publishing, or earlier when a provider "
        "reviews it.",
        policy.delay_hours if policy else 0,
    )


@dataclass(frozen=True, slots=True)
class HeldResult:
    """What a patient may know of a result not yet released to them: never its value."""

    result_id: int
    test_name: str
    release_due_at: datetime | None
    reviewer_name: str | None


# PATIENT_FILTERS hide these rows from patients on purpose; this narrow path selects only the
# test's name, when it will be released and who orders it: no value, range or flag.
_HELD = unscoped(
    select(
        LabResult.id,
        LabResult.test_name,
        LabResultVersion.release_due_at,
        ProviderProfile.display_name,
    )
    .join(
        LabResultVersion,
        and_(
            LabResultVersion.lab_result_id == LabResult.id,
            LabResultVersion.version == LabResult.current_version,
        ),
    )
    .outerjoin(ProviderProfile, ProviderProfile.user_id == LabResult.ordered_by_id)
    .where(
        LabResult.patient_id == bindparam("patient_id", type_=Integer),
        LabResult.shared_version.is_(None),
        awaiting_release(),
    )
    .order_by(LabResultVersion.published_at.desc(), LabResult.id.desc()),
    "held-result placeholders",
)


def held_results(session: Session, actor: Actor) -> list[HeldResult]:
    """The patient's own published results still held back, as placeholders (one query)."""
    if actor.role is not Role.PATIENT or actor.patient_id is None:
        return []
    rows = session.execute(_HELD, {"patient_id": actor.patient_id})
    return [HeldResult(*row) for row in rows]


# --- Patient-side reads (helper "patient"): filtered keyset pages, test pick-list, attachments ---


@dataclass(frozen=True, slots=True)
class LabFilter:
    """What a result list is narrowed to; empty fields mean "any".

    `status` is that of the version shown (the newest one the reader may see). With
    `patient_id`, `latest_page` answers 404 for a patient the reader may not see.
    """

    test_code: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    patient_id: int | None = None
    status: ResultStatus | None = None


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _parse_day(raw: str | None, key: str, errors: dict[str, str]) -> date | None:
    """`raw` as a YYYY-MM-DD day (ASCII digits); a wrong one is noted in `errors[key]`."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        if not _ISO_DAY.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        errors[key] = "Enter a date like 2026-01-31."
        return None
    if day >= date.max:
        # The list reads "up to the end of that day": the last representable day has no end.
        errors[key] = "Enter a date before the year 9999 ends."
        return None
    return day


def parse_filter(
    test: str | None, date_from: str | None, date_to: str | None
) -> tuple[LabFilter, dict[str, str]]:
    """The result list's filter from its query text, and an error per field it refused.

    Keys of the errors are the argument names ("from", "to"). A date that cannot be read, or an
    end before the start, is refused; when anything is refused the dates are dropped (the test
    is kept), so the filter returned is always one `latest_page` accepts.
    """
    errors: dict[str, str] = {}
    test_code = (test or "").strip() or None
    since = _parse_day(date_from, "from", errors)
    until = _parse_day(date_to, "to", errors)
    if since is not None and until is not None and until < since:
        errors["to"] = "The end date must be on or after the start date."
    if errors:
        return LabFilter(test_code=test_code), errors
    return LabFilter(test_code=test_code, date_from=since, date_to=until), errors


def _page_stmts(
    rs: RoleScope,
    test: bool,
    since: bool,
    until: bool,
    patient: bool = False,
    status: bool = False,
    rows: bool = False,
) -> tuple[paging.KeysetStatements, Select[tuple[int]]]:
    """The list's pages for one shape of filters (the filter values are bind parameters), and
    the count of the whole filtered list; `rows`: as plain rows (`_latest_unscoped`)."""
    stmt, sort_col = _latest_unscoped(rs.role, rows)
    stmt = stmt.order_by(None)
    if patient:
        stmt = stmt.where(LabResult.patient_id == bindparam("patient_id", type_=Integer))
    if status:
        status_type = LabResultVersion.status.type
        stmt = stmt.where(LabResultVersion.status == bindparam("status", type_=status_type))
    if test:
        stmt = stmt.where(LabResult.test_code == bindparam("test_code", type_=String))
    if since:
        stmt = stmt.where(sort_col >= bindparam("since", type_=UTCDateTime))
    if until:
        stmt = stmt.where(sort_col < bindparam("until", type_=UTCDateTime))
    filtered = rs.scope(stmt, LabResult)
    count = filtered.with_only_columns(func.count(LabResult.id))
    # The pages show the filtered total: it rides along as a scalar subquery, one round trip
    # for the page. The plain rows leave it out: the API's answer has no total, and counting
    # took the database as long as reading the page.
    shown = filtered if rows else filtered.add_columns(count.scalar_subquery().label("total"))
    keyset = paging.Keyset("lab_results", ((sort_col, True), (LabResult.id, True)))
    return keyset.statements(shown), count


def latest_page(
    session: Session,
    actor: Actor,
    filters: LabFilter,
    *,
    cursor: str | None = None,
    limit: int = paging.DEFAULT_LIMIT,
) -> paging.Page[LabRow]:
    """One page of the newest visible version of each result, newest first, with the total.

    One query whatever the number of results: the page (one row more than asked, to know
    whether another page follows) with the filtered total alongside; a second one only for a
    page past the end, which has no row to carry the total. A cursor this list did not hand
    out is refused with `paging.InvalidCursor`; a role that never reads results (an admin)
    with 403; a `filters.patient_id` the actor may not see with 404 (checked only when the
    page is empty: a row of that patient already proves they are the actor's).
    """
    require(actor, Permission.LAB_RESULT_READ)
    page = _latest(session, actor, filters, cursor, limit, rows=False)
    return replace(page, rows=[LabRow(r, v) for r, v, _total in page.rows])


def latest_rows(
    session: Session,
    actor: Actor,
    filters: LabFilter,
    *,
    cursor: str | None = None,
    limit: int = paging.DEFAULT_LIMIT,
) -> paging.Page[Row[Any]]:
    """`latest_page` as plain rows (the columns of `LAB_ROW_COLUMNS`, then `sort_key`): the same
    statement builder, scope, order, cursors and refusals, without ORM objects and without the
    total (the JSON API writes the rows straight into its answer, which has no total)."""
    require(actor, Permission.LAB_RESULT_READ)
    return _latest(session, actor, filters, cursor, limit, rows=True)


def _latest(
    session: Session,
    actor: Actor,
    filters: LabFilter,
    cursor: str | None,
    limit: int,
    *,
    rows: bool,
) -> paging.Page[Any]:
    """`latest_page` (ORM objects) or `latest_rows` (`rows`), whose callers checked the role."""
    if filters.patient_id is not None and not 0 < filters.patient_id <= MAX_ID:
        raise NotFound()  # no row has it (and a driver would refuse to bind it)
    pages, count = scoped(
        _page_stmts,
        actor,
        bool(filters.test_code),
        filters.date_from is not None,
        filters.date_to is not None,
        filters.patient_id is not None,
        filters.status is not None,
        rows,
    )
    params = reader(actor)
    if filters.patient_id is not None:
        params["patient_id"] = filters.patient_id
    if filters.status is not None:
        params["status"] = filters.status
    if filters.test_code:
        params["test_code"] = filters.test_code
    if filters.date_from:
        params["since"] = datetime.combine(filters.date_from, time(), UTC)
    if filters.date_to:
        params["until"] = datetime.combine(filters.date_to, time(), UTC) + timedelta(days=1)

    def key(row: Any) -> tuple[datetime | None, int]:
        if rows:
            return row.sort_key, row.id
        result = row[0]
        return result.collected_at, result.id

    page = pages.page(session, params, cursor=cursor, limit=paging.clamp(limit), key_of=key)
    if not page.rows and filters.patient_id is not None:
        require_visible(session, actor, filters.patient_id)
    if rows:
        return page
    total = page.rows[0][-1] if page.rows else 0
    if not page.rows and cursor:  # past the end: no row carries the total
        total = session.scalar(count, params) or 0
    return replace(page, total=total)


def result_history(
    session: Session, actor: Actor, result_id: int
) -> tuple[LabResult, list[LabResultVersion]]:
    """A result and the versions of it the actor may see, newest first (never empty).

    403 for a role that never reads results; 404 for a result that is not the actor's to see.
    """
    require(actor, Permission.LAB_RESULT_READ)
    result = get_or_404(session, LabResult, result_id, actor)
    versions = versions_of(session, actor, result)
    if not versions:
        raise NotFound()
    return result, versions


def _tests_seen_stmt(rs: RoleScope, by_patient: bool = False) -> Select[str, str]:
    stmt = (
        select(LabResult.test_code, LabResult.test_name)
        .distinct()
        .order_by(LabResult.test_name, LabResult.test_code)
    )
    if by_patient:
        stmt = stmt.where(LabResult.patient_id == bindparam("patient_id", type_=Integer))
    if rs.role is Role.PATIENT:
        # Explicit as well as in the loader criteria: a column-only select names no entity.
        stmt = stmt.where(LabResult.shared_version.is_not(None))
    return rs.scope(stmt, LabResult)


def tests_seen(session: Session, actor: Actor, patient_id: int | None) -> list[tuple[str, str]]:
    """(test code, test name) of every result the actor may see (of one patient): the list's
    filter choices."""
    stmt = scoped(_tests_seen_stmt, actor, patient_id is not None)
    params = reader(actor, patient_id=patient_id)
    return [(code, name) for code, name in session.execute(stmt, params)]


def parse_status(raw: str | None, errors: dict[str, str]) -> ResultStatus | None:
    """A status filter from its query text (blank: any); a wrong one is noted in
    `errors["status"]` and dropped."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        return ResultStatus(text)
    except ValueError:
        errors["status"] = "Choose a status from the list."
        return None


def _version_files_stmt(rs: RoleScope) -> Select[Attachment]:
    """The attachments of the result versions `:version_ids` (a list), in upload order."""
    version_ids = bindparam("version_ids", type_=Integer, expanding=True)
    stmt = select(Attachment).where(Attachment.lab_result_version_id.in_(version_ids))
    return rs.scope(stmt.order_by(Attachment.id), Attachment)


def attachments_of(
    session: Session, actor: Actor, version_ids: list[int]
) -> dict[int, list[Attachment]]:
    """Attachments of the given versions that the actor may see, by version id."""
    if not version_ids:
        return {}
    found: dict[int, list[Attachment]] = {}
    params = reader(actor, version_ids=version_ids)
    for row in session.scalars(scoped(_version_files_stmt, actor), params):
        assert row.lab_result_version_id is not None
        found.setdefault(row.lab_result_version_id, []).append(row)
    return found

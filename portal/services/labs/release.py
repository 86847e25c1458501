"""When a patient sees a result: the release state, policies and preferences, the timer,
a provider's review, and the placeholders of results still held."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext, ngettext
from sqlalchemy import ColumnElement, Integer, Select, and_, bindparam, select
from sqlalchemy.orm import Session

from portal import audit
from portal.access import (
    Actor,
    Permission,
    RoleScope,
    get_or_404,
    reader,
    require,
    scoped,
    unscoped,
)
from portal.db import utcnow
from portal.models import (
    AuditAction,
    Entity,
    EventType,
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
from portal.services import notifications
from portal.services.errors import N_, ServiceError


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


def release_times(
    session: Session, patient: PatientProfile, category: str, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """(released_at, release_due_at) for a result published now, per policy and preference."""
    delay = _auto_release_delay(release_policy_for(session, category), patient.release_preference)
    if delay is None:
        return None, None
    if not delay:
        return now, None
    return None, now + delay


def announce_release(session: Session, result: LabResult, version: LabResultVersion) -> None:
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
        actor,
        AuditAction.RELEASE,
        Entity.LAB_RESULT,
        result.id,
        patient_id=result.patient_id,
        detail={"version": version.version, "by": "review" if actor else "timer"},
        by="system",
    )
    announce_release(session, result, version)
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

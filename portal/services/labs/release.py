"""When a patient sees a result: the release state, policies and preferences, the timer,
a provider's review, and the placeholders of results still held."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext, ngettext
from sqlalchemy import ColumnElement, Integer, Select, and_, bindparam, select
from sqlalchemy.orm import Session, aliased

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
    ClinicSetting,
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


def _due(
    published: datetime, delay: timedelta | None, held_until: datetime | None
) -> datetime | None:
    """When a version published at `published` reaches the patient with no review: after the
    category's delay (when the clinic's category rules say so) and after a clinician's hold
    on the result, whichever ends later; None when only a review releases it."""
    if delay is None:
        return None
    due = published + delay
    if held_until is not None and held_until > due:
        due = held_until
    return due


def release_times(
    session: Session, patient: PatientProfile, result: LabResult, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """(released_at, release_due_at) for a version of `result` published now, per the
    patient's preference, the clinician's hold on it and (when on) the category's rule."""
    delay = _auto_release_delay(
        release_policy_for(session, result.category), patient.release_preference
    )
    due = _due(now, delay, result.held_until)
    if due is None:
        return None, None
    if due <= now:
        return now, None
    return None, due


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


def _held_versions() -> Select[LabResultVersion, str, datetime | None, ReleasePreference]:
    """Versions waiting for release, with what decides when: the category, a clinician's hold
    and the patient's preference (the timer's and the rescheduler's one statement)."""
    return (
        select(
            LabResultVersion,
            LabResult.category,
            LabResult.held_until,
            PatientProfile.release_preference,
        )
        .join(LabResult, LabResult.id == LabResultVersion.lab_result_id)
        .join(PatientProfile, PatientProfile.id == LabResultVersion.patient_id)
        .where(awaiting_release())
    )


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
    stmt = _held_versions().where(LabResultVersion.release_due_at <= now)
    policies = _policies(session)
    released = 0
    rows = session.execute(unscoped(stmt, "release timer")).all()
    for version, category, held_until, preference in rows:
        delay = _auto_release_delay(policies.get(category), preference)
        published = version.published_at
        due = None if published is None else _due(published, delay, held_until)
        if due is None or due > now:
            continue
        release_version(session, None, version)
        released += 1
    return released


def reschedule_held(session: Session, category: str | None) -> int:
    """After `category`'s policy changed: each of its held results gets the release time the
    policy and the patient's preference give it now, or none (it waits for a review), so what
    staff read ("released automatically on ...") is what will happen; returns how many
    changed. `release_due` still checks again when the time comes. `category` None: every
    held result (the category rules were turned on or off)."""
    stmt = _held_versions()
    if category is not None:
        stmt = stmt.where(LabResult.category == category)
    policies = _policies(session)
    changed = 0
    rows = session.execute(unscoped(stmt, "release timer")).all()
    for version, its_category, held_until, preference in rows:
        delay = _auto_release_delay(policies.get(its_category), preference)
        published = version.published_at
        due = None if published is None else _due(published, delay, held_until)
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


#: The clinic setting that turns the category rules (`ReleasePolicy`) on: "on", else off.
CATEGORY_RULES = "category_release_rules"


def category_rules_on(session: Session) -> bool:
    """Whether the per-category timers and holds apply. Off unless an admin turned them on:
    under the US information-blocking rule (45 CFR 171) a clinic-wide delay so that a
    clinician reviews first is likely interference; clinics elsewhere may keep them."""
    row = session.get(ClinicSetting, CATEGORY_RULES)
    return row is not None and row.value == "on"


def _policies(session: Session) -> dict[str, ReleasePolicy]:
    if not category_rules_on(session):
        return {}
    return {p.category: p for p in session.scalars(select(ReleasePolicy))}


def release_policy_for(session: Session, category: str) -> ReleasePolicy | None:
    """The category's rule, or None (released on publishing) while the rules are off."""
    if not category_rules_on(session):
        return None
    return session.scalar(select(ReleasePolicy).where(ReleasePolicy.category == category))


#: The longest a clinician's hold may last: a judgement about one result, reconsidered.
MAX_HOLD = timedelta(days=30)


class HoldError(ServiceError):
    """A hold that cannot be placed."""


@dataclass(frozen=True, slots=True)
class Hold:
    """A clinician's hold as entered: the harm it prevents and when it ends."""

    reason: str | None
    until: datetime | None


def check_hold(reason: str | None, until: datetime | None, now: datetime) -> tuple[str, datetime]:
    """The hold's reason and end, or HoldError naming what is missing."""
    text = (reason or "").strip()
    if not text:
        raise HoldError("hold_reason", "Record the harm this hold prevents: a hold needs a reason.")
    if until is None:
        raise HoldError("held_until", "Say until when the result is held.")
    if until.tzinfo is None:
        raise HoldError("held_until", "Give the end of the hold with its time zone.")
    if until <= now:
        raise HoldError("held_until", "The end of the hold must be in the future.")
    if until > now + MAX_HOLD:
        raise HoldError("held_until", "A hold can last at most 30 days.")
    return text, until


def set_hold(
    session: Session,
    actor: Actor,
    result: LabResult,
    reason: str | None,
    until: datetime | None,
) -> None:
    """Record `actor`'s hold on `result` (not yet released to the patient); audited. The
    caller has checked the actor may change this result."""
    now = utcnow()
    text, end = check_hold(reason, until, now)
    if result.shared_version is not None:
        raise HoldError("hold_reason", "The patient has already seen this result.")
    result.held_by_id = actor.user_id
    result.hold_reason = text
    result.held_until = end
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.UPDATE,
        Entity.LAB_RESULT,
        result.id,
        patient_id=result.patient_id,
        # The reason is kept on the result, which only the care team reads.
        detail={"hold": "placed", "held_until": end.isoformat(), "held_by": actor.user_id},
    )


def hold_result(
    session: Session,
    actor: Actor,
    result_id: int,
    *,
    reason: str | None,
    until: datetime | None,
) -> LabResult:
    """An assigned provider holds a result back from the patient, for a reason of preventing
    harm, until `until` (at most `MAX_HOLD`); a version waiting for release waits with it."""
    require(actor, Permission.LAB_RESULT_WRITE)
    result = get_or_404(session, LabResult, result_id, actor)
    set_hold(session, actor, result, reason, until)
    patient = get_or_404(session, PatientProfile, result.patient_id, actor)
    version = held_version(session, actor, result)
    if version is None:
        # Published and not awaiting: released already (refused above) or preliminary.
        return result
    delay = _auto_release_delay(
        release_policy_for(session, result.category), patient.release_preference
    )
    published = version.published_at
    version.release_due_at = None if published is None else _due(published, delay, until)
    session.flush()
    return result


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
    #: The clinician holding it back and until when, while their hold lasts.
    held_by_name: str | None = None
    held_until: datetime | None = None

    @property
    def held_by_clinician(self) -> bool:
        return self.held_until is not None


HoldingProvider = aliased(ProviderProfile)

# PATIENT_FILTERS hide these rows from patients on purpose; this narrow path selects only the
# test's name, when it will be released and who orders it: no value, range or flag.
_HELD = unscoped(
    select(
        LabResult.id,
        LabResult.test_name,
        LabResultVersion.release_due_at,
        ProviderProfile.display_name,
        HoldingProvider.display_name,
        LabResult.held_until,
    )
    .join(
        LabResultVersion,
        and_(
            LabResultVersion.lab_result_id == LabResult.id,
            LabResultVersion.version == LabResult.current_version,
        ),
    )
    .outerjoin(ProviderProfile, ProviderProfile.user_id == LabResult.ordered_by_id)
    .outerjoin(HoldingProvider, HoldingProvider.user_id == LabResult.held_by_id)
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
    now = utcnow()
    found = []
    for result_id, name, due, reviewer, holder, until in session.execute(
        _HELD, {"patient_id": actor.patient_id}
    ):
        lasting = until is not None and until > now
        found.append(
            HeldResult(
                result_id,
                name,
                due,
                reviewer,
                held_by_name=(holder or reviewer) if lasting else None,
                held_until=until if lasting else None,
            )
        )
    return found

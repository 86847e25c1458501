"""Treatment plans: draft, revise, activate, complete, and the patient's acknowledgement."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import Integer, Select, and_, bindparam, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from portal import audit
from portal.access import (
    Actor,
    Permission,
    RoleScope,
    get_or_404,
    reader,
    require,
    require_visible,
    scoped,
)
from portal.db import utcnow
from portal.models import (
    AuditAction,
    Entity,
    EventType,
    PatientProfile,
    PlanAcknowledgement,
    PlanStatus,
    TreatmentPlan,
    TreatmentPlanVersion,
)
from portal.services import notifications, paging
from portal.services.errors import N_, ServiceError


class PlanError(ServiceError):
    """A plan change that the plan's state or input does not allow."""


@dataclass(frozen=True, slots=True)
class PlanInput:
    summary: str
    details: str = ""
    start_date: date | None = None
    end_date: date | None = None


def _check(data: PlanInput) -> None:
    if not data.summary.strip():
        raise PlanError("summary", N_("Enter a summary."))
    if data.start_date and data.end_date and data.end_date < data.start_date:
        raise PlanError("end_date", N_("The end date must be on or after the start date."))


def _add_version(
    session: Session, actor: Actor, plan: TreatmentPlan, data: PlanInput, note: str | None
) -> TreatmentPlanVersion:
    version = TreatmentPlanVersion(
        plan_id=plan.id,
        patient_id=plan.patient_id,
        version=plan.current_version,
        status=plan.status,
        summary=data.summary.strip(),
        details=data.details.strip(),
        start_date=data.start_date,
        end_date=data.end_date,
        author_id=actor.user_id,
        change_note=note,
    )
    session.add(version)
    session.flush()
    return version


def _audit(session: Session, actor: Actor, plan: TreatmentPlan, action: AuditAction) -> None:
    audit.record(
        session,
        actor,
        action,
        Entity.TREATMENT_PLAN,
        plan.id,
        patient_id=plan.patient_id,
        detail={"version": plan.current_version, "status": str(plan.status)},
    )


def _announce(session: Session, plan: TreatmentPlan, text: str) -> None:
    notifications.stage(
        session,
        [notifications.patient_user_id(session, plan.patient_id)],
        type=EventType.TREATMENT_PLAN_UPDATED,
        entity_id=plan.id,
        patient_id=plan.patient_id,
        text=text,
    )


def create_draft(session: Session, actor: Actor, patient_id: int, data: PlanInput) -> TreatmentPlan:
    require(actor, Permission.PLAN_WRITE)
    patient = get_or_404(session, PatientProfile, patient_id, actor)
    _check(data)
    plan = TreatmentPlan(
        patient_id=patient.id,
        author_id=actor.user_id,
        status=PlanStatus.DRAFT,
        current_version=1,
        summary=data.summary.strip(),
        start_date=data.start_date,
        end_date=data.end_date,
    )
    session.add(plan)
    session.flush()
    _add_version(session, actor, plan, data, None)
    _audit(session, actor, plan, AuditAction.CREATE)
    return plan


def revise(
    session: Session, actor: Actor, plan_id: int, data: PlanInput, note: str | None = None
) -> TreatmentPlan:
    """Save a change: a draft is a new draft version, an active plan a new active version."""
    require(actor, Permission.PLAN_WRITE)
    plan = get_or_404(session, TreatmentPlan, plan_id, actor)
    if plan.status is PlanStatus.COMPLETED:
        raise PlanError("summary", N_("A completed plan cannot be changed."))
    _check(data)
    plan.current_version += 1
    plan.summary = data.summary.strip()
    plan.start_date, plan.end_date = data.start_date, data.end_date
    _add_version(session, actor, plan, data, note)
    _audit(session, actor, plan, AuditAction.UPDATE)
    if plan.status is PlanStatus.ACTIVE:
        _announce(session, plan, N_("Your treatment plan was updated"))
    return plan


def _version_stmt(rs: RoleScope) -> Select[TreatmentPlanVersion]:
    """Version `:version` of plan `:plan_id`."""
    stmt = select(TreatmentPlanVersion).where(
        TreatmentPlanVersion.plan_id == bindparam("plan_id", type_=Integer),
        TreatmentPlanVersion.version == bindparam("version", type_=Integer),
    )
    return rs.scope(stmt, TreatmentPlanVersion)


def _current_version(session: Session, actor: Actor, plan: TreatmentPlan) -> TreatmentPlanVersion:
    """The version of `plan` that is its content now (a plan always has one)."""
    params = reader(actor, plan_id=plan.id, version=plan.current_version)
    version = session.scalar(scoped(_version_stmt, actor), params)
    assert version is not None
    return version


def _current_content(session: Session, actor: Actor, plan: TreatmentPlan) -> PlanInput:
    v = _current_version(session, actor, plan)
    return PlanInput(v.summary, v.details, v.start_date, v.end_date)


def _active_plans_stmt(rs: RoleScope) -> Select[TreatmentPlan]:
    """The active plans of patient `:patient_id`."""
    stmt = select(TreatmentPlan).where(
        TreatmentPlan.patient_id == bindparam("patient_id", type_=Integer),
        TreatmentPlan.status == PlanStatus.ACTIVE,
    )
    return rs.scope(stmt, TreatmentPlan)


def activate(
    session: Session, actor: Actor, plan_id: int, *, complete_others: bool = True
) -> TreatmentPlan:
    """Approve and activate a draft; the approving provider is recorded. Other active plans of
    the patient are completed when `complete_others` (the usual case: a plan replaces another)."""
    require(actor, Permission.PLAN_WRITE)
    return activate_saying(session, actor, plan_id, complete_others=complete_others)[0]


def activate_saying(
    session: Session, actor: Actor, plan_id: int, *, complete_others: bool
) -> tuple[TreatmentPlan, list[int], list[int]]:
    """`activate`, and what happened to the patient's other active plans: the ids of those
    completed and of those left active (the caller chose)."""
    require(actor, Permission.PLAN_WRITE)
    plan = get_or_404(session, TreatmentPlan, plan_id, actor)
    if plan.status is not PlanStatus.DRAFT:
        raise PlanError("status", N_("Only a draft can be activated."))
    now = utcnow()
    params = reader(actor, patient_id=plan.patient_id)
    others = [p.id for p in session.scalars(scoped(_active_plans_stmt, actor), params).all()]
    if complete_others:
        for other in others:
            complete(session, actor, other)
    content = _current_content(session, actor, plan)
    plan.status = PlanStatus.ACTIVE
    plan.approver_id = actor.user_id
    plan.activated_at = now
    plan.current_version += 1
    _add_version(session, actor, plan, content, "Approved and activated")
    _audit(session, actor, plan, AuditAction.ACTIVATE)
    _announce(session, plan, N_("You have a new treatment plan to read"))
    return plan, (others if complete_others else []), ([] if complete_others else others)


def complete(session: Session, actor: Actor, plan_id: int) -> TreatmentPlan:
    require(actor, Permission.PLAN_WRITE)
    plan = get_or_404(session, TreatmentPlan, plan_id, actor)
    if plan.status is not PlanStatus.ACTIVE:
        raise PlanError("status", N_("Only an active plan can be completed."))
    content = _current_content(session, actor, plan)
    plan.status = PlanStatus.COMPLETED
    plan.completed_at = utcnow()
    plan.current_version += 1
    _add_version(session, actor, plan, content, "Completed")
    _audit(session, actor, plan, AuditAction.COMPLETE)
    _announce(session, plan, N_("A treatment plan was completed"))
    return plan


def _acknowledgements_stmt(rs: RoleScope) -> Select[PlanAcknowledgement]:
    """The acknowledgements of the plan versions `:version_ids` (a list)."""
    version_ids = bindparam("version_ids", type_=Integer, expanding=True)
    stmt = select(PlanAcknowledgement).where(PlanAcknowledgement.plan_version_id.in_(version_ids))
    return rs.scope(stmt, PlanAcknowledgement)


def acknowledge(session: Session, actor: Actor, plan_id: int) -> PlanAcknowledgement:
    """The patient confirms they read the plan's current version (once per version)."""
    require(actor, Permission.PLAN_ACKNOWLEDGE)
    plan = get_or_404(session, TreatmentPlan, plan_id, actor)
    if plan.status is not PlanStatus.ACTIVE:
        raise PlanError("status", N_("Only an active plan can be acknowledged."))
    version = _current_version(session, actor, plan)
    params = reader(actor, version_ids=[version.id])
    existing = session.scalar(scoped(_acknowledgements_stmt, actor), params)
    if existing is not None:
        return existing
    ack = PlanAcknowledgement(
        plan_version_id=version.id,
        patient_id=plan.patient_id,
        user_id=actor.user_id,
        acknowledged_at=utcnow(),
    )
    session.add(ack)
    session.flush()
    _audit(session, actor, plan, AuditAction.ACKNOWLEDGE)
    notifications.mark_read(
        session, actor.user_id, type=EventType.TREATMENT_PLAN_UPDATED, entity_id=plan.id
    )
    return ack


# --- Reads for the staff area (helper "staff") ---


def _versions_stmt(rs: RoleScope) -> Select[TreatmentPlanVersion]:
    """The versions of plan `:plan_id`, newest first."""
    stmt = (
        select(TreatmentPlanVersion)
        .where(TreatmentPlanVersion.plan_id == bindparam("plan_id", type_=Integer))
        .order_by(TreatmentPlanVersion.version.desc())
    )
    return rs.scope(stmt, TreatmentPlanVersion)


def history(
    session: Session, actor: Actor, plan: TreatmentPlan
) -> list[tuple[TreatmentPlanVersion, PlanAcknowledgement | None]]:
    """Every version of `plan` the actor may see, newest first, each with its acknowledgement."""
    versions = list(session.scalars(scoped(_versions_stmt, actor), reader(actor, plan_id=plan.id)))
    acks: dict[int, PlanAcknowledgement] = {}
    if versions:
        params = reader(actor, version_ids=[v.id for v in versions])
        acks = {
            a.plan_version_id: a
            for a in session.scalars(scoped(_acknowledgements_stmt, actor), params)
        }
    return [(v, acks.get(v.id)) for v in versions]


# --- Lists of plans (the patient's pages, the JSON API) -----------------------------------------

#: The moment each list is ordered by, newest first: active plans by activation, completed ones
#: by completion, drafts and the list of every status by creation (a draft has neither moment).
_LISTED_BY: dict[PlanStatus | None, str] = {
    PlanStatus.ACTIVE: "activated_at",
    PlanStatus.COMPLETED: "completed_at",
    PlanStatus.DRAFT: "created_at",
    None: "created_at",
}


def _plans(rs: RoleScope, status: PlanStatus | None, one_patient: bool) -> paging.KeysetStatements:
    """Plans of `status` (every status when None), of patient `:patient_id` when
    `one_patient`, newest first (see `_LISTED_BY`)."""
    stmt = select(TreatmentPlan)
    if status is not None:
        stmt = stmt.where(TreatmentPlan.status == status)
    if one_patient:
        stmt = stmt.where(TreatmentPlan.patient_id == bindparam("patient_id", type_=Integer))
    when = getattr(TreatmentPlan, _LISTED_BY[status])
    name = f"{status.value if status is not None else 'all'}_plans"
    keyset = paging.Keyset(name, ((when, True), (TreatmentPlan.id, True)))
    return keyset.statements(rs.scope(stmt, TreatmentPlan))


def list_for(
    session: Session,
    actor: Actor,
    status: PlanStatus | None = None,
    *,
    patient_id: int | None = None,
    cursor: str | None = None,
    limit: int = paging.DEFAULT_LIMIT,
) -> paging.Page[TreatmentPlan]:
    """A page of the plans the actor may see, of one status (any when None) and, when
    `patient_id` is given, of that patient only; newest first.

    A patient never sees drafts (their scope hides them, so `DRAFT` gives them an empty list);
    a role that reads no clinical record (an admin) gets 403, a patient who is not the actor's
    to see 404, before anything is listed.
    """
    require(actor, Permission.PLAN_READ)
    params = reader(actor)
    if patient_id is not None:
        require_visible(session, actor, patient_id)
        params["patient_id"] = patient_id
    listed_by = _LISTED_BY[status]
    page = scoped(_plans, actor, status, patient_id is not None).page(
        session,
        params,
        cursor=cursor,
        limit=paging.clamp(limit),
        key_of=lambda row: (getattr(row[0], listed_by), row[0].id),
    )
    return replace(page, rows=[row[0] for row in page.rows])


def _current_versions_stmt(rs: RoleScope) -> Select[TreatmentPlanVersion]:
    """The current version of each of the plans `:plan_ids` (a list)."""
    plan_ids = bindparam("plan_ids", type_=Integer, expanding=True)
    current = and_(
        TreatmentPlan.id == TreatmentPlanVersion.plan_id,
        TreatmentPlan.current_version == TreatmentPlanVersion.version,
    )
    stmt = (
        select(TreatmentPlanVersion)
        .join(TreatmentPlan, current)
        .where(TreatmentPlanVersion.plan_id.in_(plan_ids))
    )
    return rs.scope(stmt, TreatmentPlanVersion)


def current_versions(
    session: Session, actor: Actor, plans: Sequence[TreatmentPlan]
) -> dict[int, TreatmentPlanVersion]:
    """The current version (its details, its author) of each of `plans`, by plan id; one
    query however many plans. A plan the actor may not see has none."""
    if not plans:
        return {}
    params = reader(actor, plan_ids=[p.id for p in plans])
    rows = session.scalars(scoped(_current_versions_stmt, actor), params)
    return {v.plan_id: v for v in rows}


def acknowledged_at(
    session: Session, actor: Actor, versions: Sequence[TreatmentPlanVersion]
) -> dict[int, datetime]:
    """When the patient acknowledged each of `versions` (those they did), by version id; one
    query however many versions."""
    if not versions:
        return {}
    params = reader(actor, version_ids=[v.id for v in versions])
    rows = session.scalars(scoped(_acknowledgements_stmt, actor), params)
    return {a.plan_version_id: a.acknowledged_at for a in rows}


# --- Two versions side by side --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of text in a comparison: kept, added (only in the newer) or removed (only in the
    older). Pages mark added and removed runs in words as well as in style."""

    kind: str  # "same", "added" or "removed"
    text: str


@dataclass(frozen=True, slots=True)
class FieldChange:
    label: str
    segments: list[Segment]

    @property
    def changed(self) -> bool:
        return any(s.kind != "same" for s in self.segments)


@dataclass(frozen=True, slots=True)
class PlanComparison:
    older: TreatmentPlanVersion
    newer: TreatmentPlanVersion
    #: Every version the reader may see, newest first (the choices of what to compare).
    versions: list[TreatmentPlanVersion]
    fields: list[FieldChange]

    @property
    def changed(self) -> bool:
        return any(f.changed for f in self.fields)


#: Words with the whitespace after them, so line breaks survive in the compared text.
_WORDS = re.compile(r"\S+\s*|\s+")


def _segments(old: str, new: str) -> list[Segment]:
    """`old` to `new` as kept, removed and added runs of words (removed before added)."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    out: list[Segment] = []

    def put(kind: str, words: list[str]) -> None:
        if not words:
            return
        if out and out[-1].kind == kind:
            out[-1] = Segment(kind, out[-1].text + "".join(words))
        else:
            out.append(Segment(kind, "".join(words)))

    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            put("same", a[i1:i2])
            continue
        put("removed", a[i1:i2])
        put("added", b[j1:j2])
    return out


def _days(old: date | None, new: date | None) -> list[Segment]:
    """A date is one word: it changed as a whole, or not at all."""
    before, after = (f"{d:%-d %B %Y}" if d else "not set" for d in (old, new))
    if before == after:
        return [Segment("same", before)]
    return [Segment("removed", before), Segment("added", after)]


def parse_version(raw: str | None) -> int | None:
    """A version number from a comparison's query text (blank: the default); anything else
    than a whole number is `PlanError` on "versions"."""
    text = (raw or "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise PlanError("versions", N_("Choose the versions from the lists."))
    return int(text)


def compare(
    session: Session, actor: Actor, plan_id: int, older: int | None, newer: int | None
) -> PlanComparison:
    """What changed in plan `plan_id` from version `older` to version `newer` (numbers), among
    the versions the actor may see (a patient never sees drafts): summary, details and dates.

    Defaults: `newer` the newest version the actor sees; `older` the one they last acknowledged
    before it (a patient: what the new acknowledgement is about), else the one before it. A
    version the actor may not see is 404, as the plan is; 422 (`PlanError` on "versions") when
    the two are the same or in the wrong order.
    """
    plan = get_or_404(session, TreatmentPlan, plan_id, actor)
    seen = history(session, actor, plan)
    by_number = {v.version: v for v, _ack in seen}
    if not seen or (older is not None and older not in by_number):
        raise NotFound()
    if newer is not None and newer not in by_number:
        raise NotFound()
    new = by_number[newer] if newer is not None else seen[0][0]
    if older is None:
        earlier = [(v, ack) for v, ack in seen if v.version < new.version]
        acknowledged = [v for v, ack in earlier if ack is not None]
        chosen = acknowledged[:1] or [v for v, _ack in earlier[:1]] or [new]
        old = chosen[0]
    else:
        old = by_number[older]
    if old.version >= new.version and len(seen) > 1:
        raise PlanError("versions", N_("Choose an earlier version first, then a later one."))
    fields = [
        FieldChange(N_("Summary"), _segments(old.summary, new.summary)),
        FieldChange(N_("Details"), _segments(old.details or "", new.details or "")),
        FieldChange(N_("Start date"), _days(old.start_date, new.start_date)),
        FieldChange(N_("End date"), _days(old.end_date, new.end_date)),
    ]
    return PlanComparison(old, new, [v for v, _ack in seen], fields)


def compare_requested(
    session: Session, actor: Actor, plan_id: int, raw_older: str | None, raw_newer: str | None
) -> tuple[PlanComparison, str | None]:
    """`compare` for the versions a page's query names; when they cannot be compared (not
    numbers, same or reversed), the default comparison and the message to show with 422."""
    try:
        older, newer = parse_version(raw_older), parse_version(raw_newer)
        return compare(session, actor, plan_id, older, newer), None
    except PlanError as exc:
        return compare(session, actor, plan_id, None, None), exc.message

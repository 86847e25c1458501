"""Read models: what one screen shows, read once, for every door that shows it.

A view (or an API handler) calls one function here, renders what it returns and names its
`subject` as what the response showed (`web.audit_reads.shows`). The rules of a screen
("no visible version is a 404", "may this plan be activated") are decided here, once, and
reach templates as values and booleans.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from portal.access import Actor, get_or_404
from portal.audit import Subject
from portal.models import (
    Attachment,
    Conversation,
    Entity,
    LabResult,
    LabResultVersion,
    Message,
    PatientProfile,
    PlanAcknowledgement,
    PlanStatus,
    TreatmentPlan,
    TreatmentPlanVersion,
    User,
)
from portal.services import labs, messaging, plans, trends

# --- A lab result ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResultScreen:
    """One result as its reader sees it: every version they may see (newest first, never
    empty), their files, the test's trend, and who ordered, published and reviewed it.

    For staff also the patient, a held version and the release rule of the category."""

    result: LabResult
    versions: list[LabResultVersion]
    files: dict[int, list[Attachment]]
    trend: trends.Trend
    people: dict[int, User]
    patient: PatientProfile | None = None
    held: LabResultVersion | None = None
    policy: str | None = None

    @property
    def subject(self) -> Subject:
        return Subject(Entity.LAB_RESULT, self.result.id, self.result.patient_id)

    @property
    def current(self) -> LabResultVersion:
        return self.versions[0]

    @property
    def history(self) -> list[tuple[LabResultVersion, LabResultVersion | None]]:
        """Each version beside the one before it (None for the first)."""
        return list(zip(self.versions, [*self.versions[1:], None], strict=True))


def lab_result(session: Session, actor: Actor, result_id: int) -> ResultScreen:
    """A result for a patient's own screen (403 for a role that reads no results; 404 when the
    result, or every version of it, is not theirs to see)."""
    result, versions = labs.result_history(session, actor, result_id)
    user_ids = {u for u in (result.ordered_by_id, *(v.published_by_id for v in versions)) if u}
    return ResultScreen(
        result=result,
        versions=versions,
        files=labs.attachments_of(session, actor, [v.id for v in versions]),
        trend=trends.trend_for(session, actor, result),
        people=messaging.users_by_id(session, user_ids),
    )


def staff_lab_result(session: Session, actor: Actor, result_id: int) -> ResultScreen:
    """A result for the clinician's screen: the patient's view plus the patient, the version
    held back from them, and the release rule of the result's category."""
    result, versions = labs.result_history(session, actor, result_id)
    user_ids = {u for v in versions for u in (v.published_by_id, v.reviewed_by_id) if u}
    if result.held_by_id is not None:
        user_ids.add(result.held_by_id)
    return ResultScreen(
        result=result,
        versions=versions,
        files=labs.attachments_of(session, actor, [v.id for v in versions]),
        trend=trends.trend_for(session, actor, result),
        people=messaging.users_by_id(session, user_ids),
        patient=get_or_404(session, PatientProfile, result.patient_id, actor),
        held=labs.held_version(session, actor, result),
        policy=labs.describe_policy(labs.release_policy_for(session, result.category)),
    )


# --- A treatment plan --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanScreen:
    """One plan with every version its reader may see (newest first) and their
    acknowledgements, who wrote and approved them, and what may be done with it now."""

    plan: TreatmentPlan
    history: list[tuple[TreatmentPlanVersion, PlanAcknowledgement | None]]
    people: dict[int, User]
    patient: PatientProfile | None = None
    acks: dict[int, PlanAcknowledgement] = field(default_factory=dict)

    @property
    def subject(self) -> Subject:
        return Subject(Entity.TREATMENT_PLAN, self.plan.id, self.plan.patient_id)

    @property
    def versions(self) -> list[TreatmentPlanVersion]:
        return [v for v, _ack in self.history]

    @property
    def current(self) -> TreatmentPlanVersion:
        """The version in force (the newest the reader may see when none is)."""
        versions = self.versions
        return next((v for v in versions if v.version == self.plan.current_version), versions[0])

    @property
    def is_draft(self) -> bool:
        return self.plan.status is PlanStatus.DRAFT

    @property
    def awaiting_acknowledgement(self) -> bool:
        """Active, and its version in force not yet acknowledged by the patient."""
        return self.plan.status is PlanStatus.ACTIVE and self.current.id not in self.acks

    @property
    def may_activate(self) -> bool:
        return self.plan.status is PlanStatus.DRAFT

    @property
    def may_complete(self) -> bool:
        return self.plan.status is PlanStatus.ACTIVE


def _plan_screen(
    session: Session, actor: Actor, plan: TreatmentPlan, patient: PatientProfile | None
) -> PlanScreen:
    history = plans.history(session, actor, plan)
    user_ids = {v.author_id for v, _a in history} | {plan.author_id, plan.approver_id or 0}
    return PlanScreen(
        plan=plan,
        history=history,
        people=messaging.users_by_id(session, user_ids),
        patient=patient,
        acks={v.id: ack for v, ack in history if ack is not None},
    )


def treatment_plan(session: Session, actor: Actor, plan_id: int) -> PlanScreen:
    """A plan for a patient's own screen (drafts are not theirs to see: 404)."""
    return _plan_screen(session, actor, get_or_404(session, TreatmentPlan, plan_id, actor), None)


def staff_treatment_plan(session: Session, actor: Actor, plan_id: int) -> PlanScreen:
    """A plan for the clinician's screen, with its patient."""
    plan = get_or_404(session, TreatmentPlan, plan_id, actor)
    patient = get_or_404(session, PatientProfile, plan.patient_id, actor)
    return _plan_screen(session, actor, plan, patient)


# --- A conversation ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThreadScreen:
    """One conversation: its messages the reader may see (oldest first) with their files, and
    who takes part or wrote; for staff also the patient."""

    conversation: Conversation
    thread: list[tuple[Message, list[Attachment]]]
    people: dict[int, User]
    patient: PatientProfile | None = None

    @property
    def subject(self) -> Subject:
        return Subject(Entity.CONVERSATION, self.conversation.id, self.conversation.patient_id)

    @property
    def is_closed(self) -> bool:
        return self.conversation.closed_at is not None


def conversation(session: Session, actor: Actor, conversation_id: int) -> ThreadScreen:
    """A thread for a patient's own screen: who wrote, too (a clinician who handed the thread
    over still signs their messages)."""
    found = get_or_404(session, Conversation, conversation_id, actor)
    thread = messaging.thread_messages(session, actor, found)
    senders = {m.sender_id for m, _files in thread}
    people = set(messaging.participants(session, found.id)) | senders
    return ThreadScreen(found, thread, messaging.users_by_id(session, people))


def staff_conversation(session: Session, actor: Actor, conversation_id: int) -> ThreadScreen:
    """A thread for the clinician's screen, with its patient."""
    found = get_or_404(session, Conversation, conversation_id, actor)
    patient = get_or_404(session, PatientProfile, found.patient_id, actor)
    thread = messaging.thread_messages(session, actor, found)
    user_ids = {u for m, _f in thread for u in (m.sender_id, m.recipient_id)}
    return ThreadScreen(found, thread, messaging.users_by_id(session, user_ids), patient)


__all__ = [
    "PlanScreen",
    "ResultScreen",
    "ThreadScreen",
    "conversation",
    "lab_result",
    "staff_conversation",
    "staff_lab_result",
    "staff_treatment_plan",
    "treatment_plan",
]

"""Who may see what: the one place that scopes every read of protected health information.

A patient reads their own records; a provider reads the records of patients currently assigned
to them; an admin reads every patient's demographics and account but no clinical content.
A record outside the reader's scope is indistinguishable from a missing one (404).
"""

from __future__ import annotations

import enum
import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    String,
    TableClause,
    and_,
    bindparam,
    cast,
    event,
    false,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import InstrumentedAttribute, ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnClause, TextClause
from werkzeug.exceptions import Forbidden, NotFound

from portal.actor import Actor, Delegation
from portal.db import Base
from portal.models import (
    PARENTAL,
    Appointment,
    Attachment,
    AuthMethod,
    CareAssignment,
    Conversation,
    LabResult,
    LabResultVersion,
    Message,
    Notification,
    PatientOwned,
    PatientProfile,
    PlanAcknowledgement,
    PlanStatus,
    ProxyGrant,
    ProxyScope,
    ReleasePolicy,
    Role,
    TreatmentPlan,
    TreatmentPlanVersion,
    Visibility,
)

S = TypeVar("S", bound=Select[*tuple[Any, ...]])
M = TypeVar("M")


class Permission(enum.StrEnum):
    """Role gates: what a role may ever do, before any question of whose record it is."""

    READ_OWN_RECORDS = "records:read_own"
    READ_ASSIGNED_RECORDS = "records:read_assigned"
    #: Look patients up by name or MRN (whom: `RoleScope.patients` decides).
    PATIENTS_LIST = "patients:list"
    #: Read lab results (whose: `scope` decides); an admin never reads clinical content.
    LAB_RESULT_READ = "lab_result:read"
    LAB_RESULT_WRITE = "lab_result:write"
    #: Read treatment plans (whose: `scope` decides); an admin never reads clinical content.
    PLAN_READ = "treatment_plan:read"
    PLAN_WRITE = "treatment_plan:write"
    PLAN_ACKNOWLEDGE = "treatment_plan:acknowledge"
    MESSAGE_SEND = "message:send"
    APPOINTMENT_BOOK = "appointment:book"
    #: Answer a time one's provider proposed (the patient's side of a request).
    APPOINTMENT_ACCEPT = "appointment:accept"
    APPOINTMENT_MANAGE = "appointment:manage"
    SCHEDULE_MANAGE = "schedule:manage"
    ACCOUNTS_MANAGE = "accounts:manage"
    CARE_TEAMS_MANAGE = "care_teams:manage"
    SETTINGS_MANAGE = "settings:manage"
    AUDIT_READ = "audit:read"
    #: One's own password and signed-in devices.
    OWN_ACCOUNT = "account:manage_own"
    #: Let someone else open one's own record (a proxy grant): the patient, in person.
    SHARE_OWN_RECORD = "records:share_own"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.PATIENT: frozenset(
        {
            Permission.READ_OWN_RECORDS,
            Permission.LAB_RESULT_READ,
            Permission.PLAN_READ,
            Permission.PLAN_ACKNOWLEDGE,
            Permission.MESSAGE_SEND,
            Permission.APPOINTMENT_BOOK,
            Permission.APPOINTMENT_ACCEPT,
            Permission.OWN_ACCOUNT,
            Permission.SHARE_OWN_RECORD,
        }
    ),
    Role.PROVIDER: frozenset(
        {
            Permission.READ_ASSIGNED_RECORDS,
            Permission.PATIENTS_LIST,
            Permission.LAB_RESULT_READ,
            Permission.LAB_RESULT_WRITE,
            Permission.PLAN_READ,
            Permission.PLAN_WRITE,
            Permission.MESSAGE_SEND,
            Permission.APPOINTMENT_BOOK,
            Permission.APPOINTMENT_MANAGE,
            Permission.SCHEDULE_MANAGE,
            Permission.OWN_ACCOUNT,
        }
    ),
    Role.ADMIN: frozenset(
        {
            Permission.ACCOUNTS_MANAGE,
            Permission.CARE_TEAMS_MANAGE,
            Permission.SETTINGS_MANAGE,
            Permission.AUDIT_READ,
            Permission.PATIENTS_LIST,
            Permission.OWN_ACCOUNT,
        }
    ),
}

#: Which permissions each way of signing in may use, whatever the role allows (warehouse's
#: PERMISSION_AUTH_METHODS, turned around). A bearer token can be copied out of an app or a
#: script, so it never manages accounts, care teams or settings, nor its owner's password or
#: sessions: those need the person at the sign-in page.
METHOD_PERMISSIONS: dict[AuthMethod, frozenset[Permission]] = {
    AuthMethod.SESSION: frozenset(Permission),
    AuthMethod.TOKEN: frozenset(Permission)
    - {
        Permission.ACCOUNTS_MANAGE,
        Permission.CARE_TEAMS_MANAGE,
        Permission.SETTINGS_MANAGE,
        Permission.OWN_ACCOUNT,
        Permission.SHARE_OWN_RECORD,
    },
}


#: What acting for someone else may ever do, by the scope of the grant. A delegation only
#: narrows: the person's role (a patient's) must allow it too. Nothing here reaches the
#: patient's account (password, devices, two-step sign-in): that stays theirs alone.
DELEGATED_PERMISSIONS: dict[ProxyScope, frozenset[Permission]] = {
    ProxyScope.LAB_RESULTS: frozenset({Permission.LAB_RESULT_READ}),
    ProxyScope.TREATMENT_PLANS: frozenset({Permission.PLAN_READ}),
    ProxyScope.MESSAGES: frozenset({Permission.MESSAGE_SEND}),
    ProxyScope.APPOINTMENTS: frozenset({Permission.APPOINTMENT_BOOK}),
    ProxyScope.RECORD: frozenset({Permission.READ_OWN_RECORDS}),
}

#: Which scope opens each kind of record to a proxy; a kind not named here is never theirs.
SCOPE_OF: dict[type, ProxyScope] = {
    LabResult: ProxyScope.LAB_RESULTS,
    LabResultVersion: ProxyScope.LAB_RESULTS,
    TreatmentPlan: ProxyScope.TREATMENT_PLANS,
    TreatmentPlanVersion: ProxyScope.TREATMENT_PLANS,
    PlanAcknowledgement: ProxyScope.TREATMENT_PLANS,
    Conversation: ProxyScope.MESSAGES,
    Message: ProxyScope.MESSAGES,
    Appointment: ProxyScope.APPOINTMENTS,
}


def can(actor: Actor, permission: Permission) -> bool:
    """May this actor, signed in the way it did (and within its grant), ever do this?"""
    if permission not in ROLE_PERMISSIONS[actor.role] or (
        permission not in METHOD_PERMISSIONS[actor.via]
    ):
        return False
    delegation = actor.acting_for
    return delegation is None or any(
        permission in DELEGATED_PERMISSIONS[scope] for scope in delegation.scopes
    )


def require(actor: Actor, permission: Permission) -> None:
    """403 when the actor's role, or the way it signed in, may never do this; 404 when it
    acts for someone else and the grant does not cover it (as for anything not theirs)."""
    if not can(actor, permission):
        if actor.acting_for is not None:
            raise NotFound()
        raise Forbidden()


#: The reader's ids in a scoped statement: always bind parameters (see `RoleScope`).
Id = BindParameter[int]
#: The largest id a row can have: primary keys are INTEGER, 32 bits on PostgreSQL.
MAX_ID = 2**31 - 1


def _visible_ids(role: Role, patient_id: Id, provider_id: Id) -> Select[int]:
    match role:
        case Role.PATIENT:
            return select(PatientProfile.id).where(PatientProfile.id == patient_id)
        case Role.PROVIDER:
            return select(CareAssignment.patient_id).where(
                CareAssignment.provider_id == provider_id,
                CareAssignment.ended_at.is_(None),
            )
        case _:
            return select(PatientProfile.id).where(false())


def _released_version_ids() -> Select[int]:
    # Only the reader's own (a patient's filters apply to a patient reader): unrestricted, the
    # planner reads every released version of every patient to check one attachment.
    return select(LabResultVersion.id).where(
        LabResultVersion.patient_id == _READER_PATIENT,
        LabResultVersion.visibility == Visibility.SHARED,
        LabResultVersion.released_at.is_not(None),
    )


# What a patient may see of their own records: provider-only, unreleased and draft content never.
# Applied with with_loader_criteria, so it follows every load of these classes in the statement.
PATIENT_FILTERS: dict[type, Callable[[Any], ColumnElement[bool]]] = {
    LabResult: lambda m: m.shared_version.is_not(None),
    LabResultVersion: lambda m: (m.visibility == Visibility.SHARED) & m.released_at.is_not(None),
    TreatmentPlan: lambda m: m.status != PlanStatus.DRAFT,
    TreatmentPlanVersion: lambda m: m.status != PlanStatus.DRAFT,
    Attachment: lambda m: or_(
        m.lab_result_version_id.is_(None), m.lab_result_version_id.in_(_released_version_ids())
    ),
}


@dataclass(frozen=True, slots=True)
class Narrowing:
    """How a delegation narrows a patient's reads: the scopes its grant opens, and the rule for
    a teenager under a parent's grant (no confidential results, none of their messages)."""

    scopes: frozenset[ProxyScope]
    teen: bool

    @classmethod
    def of(cls, delegation: Delegation | None) -> Narrowing | None:
        if delegation is None:
            return None
        return cls(delegation.scopes, delegation.teen)

    def allows(self, model: type) -> bool:
        scope = SCOPE_OF.get(model)
        if model is Attachment:  # a result's report or a message's file: either scope
            return bool({ProxyScope.LAB_RESULTS, ProxyScope.MESSAGES} & self.scopes)
        return scope is not None and scope in self.scopes


def _owned_models() -> list[type]:
    """Every kind of record a patient owns (grants on their record included)."""
    return [m.class_ for m in Base.registry.mappers if issubclass(m.class_, PatientOwned)]


def _confidential_results() -> Select[int]:
    """The reader's results in a category the release policy keeps confidential (sensitive:
    never released by a timer, e.g. sexual health)."""
    confidential = select(ReleasePolicy.category).where(ReleasePolicy.never_auto_release)
    return select(LabResult.id).where(
        LabResult.patient_id == _READER_PATIENT, LabResult.category.in_(confidential)
    )


def _narrowed_filters(narrow: Narrowing) -> dict[type, Any]:
    """What a proxy's reads leave out, on top of the patient's own filters: each kind of
    record outside the grant's scopes, and a teenager's confidential results."""
    rules: dict[type, Any] = {
        model: (lambda _m: false()) for model in _owned_models() if not narrow.allows(model)
    }
    if narrow.teen and narrow.allows(LabResult):
        rules[LabResult] = lambda m: m.id.not_in(_confidential_results())
        rules[LabResultVersion] = lambda m: m.lab_result_id.not_in(_confidential_results())
    # An expression, not a lambda: it depends on the narrowing, which a lambda's cache
    # would not see.
    rules[Attachment] = _attachments_allowed(narrow)
    return rules


def _attachments_allowed(narrow: Narrowing) -> ColumnElement[bool]:
    """Files a proxy may open: a message's only with the messages scope, a result's report
    only with the results scope (and never a teenager's confidential one)."""
    parts: list[ColumnElement[bool]] = []
    if ProxyScope.MESSAGES not in narrow.scopes:
        parts.append(Attachment.message_id.is_(None))
    if ProxyScope.LAB_RESULTS not in narrow.scopes:
        parts.append(Attachment.lab_result_version_id.is_(None))
    elif narrow.teen:
        confidential = select(LabResultVersion.id).where(
            LabResultVersion.lab_result_id.in_(_confidential_results())
        )
        parts.append(
            or_(
                Attachment.lab_result_version_id.is_(None),
                Attachment.lab_result_version_id.not_in(confidential),
            )
        )
    return and_(true(), *parts)


def _scope(
    stmt: S,
    model: type[PatientOwned],
    role: Role,
    patient_id: Id,
    provider_id: Id,
    narrow: Narrowing | None = None,
) -> S:
    if role is Role.PATIENT:
        # The same rule as `patient_id IN (their own profile's id)`, said so that the planner
        # walks the (patient_id, ...) indexes in order and stops at the page's LIMIT. A patient
        # without a profile binds NULL, which equals nothing.
        stmt = stmt.where(model.patient_id == patient_id)
        for target, rule in PATIENT_FILTERS.items():
            stmt = stmt.options(with_loader_criteria(target, rule, include_aliases=True))
        if narrow is not None:
            for target, rule in _narrowed_filters(narrow).items():
                stmt = stmt.options(with_loader_criteria(target, rule, include_aliases=True))
    else:
        stmt = stmt.where(model.patient_id.in_(_visible_ids(role, patient_id, provider_id)))
    return stmt.execution_options(portal_scoped=True)


def _scope_patients(stmt: S, role: Role, patient_id: Id, provider_id: Id) -> S:
    if role is not Role.ADMIN:
        stmt = stmt.where(PatientProfile.id.in_(_visible_ids(role, patient_id, provider_id)))
    return stmt.execution_options(portal_scoped=True)


# --- The one way to write a scoped statement ---------------------------------------------------
#
# A scoped statement is written once per role by a builder, `build(rs: RoleScope) -> statement`,
# with the reader's ids as bind parameters, and run with `reader(actor, ...)` as its parameters.
# `scoped(build, actor)` builds it on first use and reuses it: building a SELECT (and
# SQLAlchemy's cache key for it) costs more Python time than running it. A missing parameter is
# an error, never "no filter": SQLAlchemy refuses to run the statement.

_READER_PATIENT: BindParameter[int] = bindparam("reader_patient_id", type_=Integer)
_READER_PROVIDER: BindParameter[int] = bindparam("reader_provider_id", type_=Integer)
_READER_USER: BindParameter[int] = bindparam("reader_user_id", type_=Integer)

B = TypeVar("B")
Shape = bool | None | enum.Enum | type
_BUILT: dict[tuple[Callable[..., Any], Role, Any, tuple[Shape, ...]], Any] = {}


@dataclass(frozen=True, slots=True)
class RoleScope:
    """The access rules for any reader of one role; the reader's ids come at execution."""

    role: Role
    #: Set for a reader acting for someone else (`Narrowing.of(actor.acting_for)`).
    narrow: Narrowing | None = None

    @property
    def user_id(self) -> BindParameter[int]:
        """The reader's own user id, for conditions such as "messages sent to me"."""
        return _READER_USER

    @property
    def patient_id(self) -> BindParameter[int]:
        """The reader's patient profile id (patients), for "my own record"."""
        return _READER_PATIENT

    @property
    def provider_id(self) -> BindParameter[int]:
        """The reader's provider profile id (providers), for "my own schedule"."""
        return _READER_PROVIDER

    def scope(self, stmt: S, model: type[PatientOwned]) -> S:
        """Rows of `model` the reader may read (their own, or their assigned patients')."""
        return _scope(stmt, model, self.role, _READER_PATIENT, _READER_PROVIDER, self.narrow)

    def patients(self, stmt: S) -> S:
        """A query on `PatientProfile` restricted to the patients the reader may see at all.

        Admins see every patient's demographics (to administer accounts and care teams);
        what they never see is clinical content, which `scope` refuses them.
        """
        return _scope_patients(stmt, self.role, _READER_PATIENT, _READER_PROVIDER)

    def naming_visible(
        self,
        stmt: S,
        kind: InstrumentedAttribute[str],
        record_id: InstrumentedAttribute[str | None],
        kinds: Mapping[str, type[PatientOwned]],
    ) -> S:
        """Rows of another table that name a record (its `kind` and its id as text, as audit
        entries do) limited to those whose record the reader may see now, by the rules of
        `scope` (for a patient: no draft, held or provider-only content). Rows naming a kind
        not in `kinds` pass; a record that is gone counts as not visible."""
        allowed: list[ColumnElement[bool]] = [kind.not_in(list(kinds))]
        for name, model in kinds.items():
            ids = select(cast(model.id, String))  # type: ignore[attr-defined]
            if self.role is Role.PATIENT:
                rule = PATIENT_FILTERS.get(model)
                ids = ids.where(model.patient_id == _READER_PATIENT)
                ids = ids if rule is None else ids.where(rule(model))
            else:
                ids = ids.where(
                    model.patient_id.in_(_visible_ids(self.role, _READER_PATIENT, _READER_PROVIDER))
                )
            allowed.append((kind == name) & record_id.in_(ids))
        return stmt.where(or_(*allowed)).execution_options(portal_scoped=True)

    def own(self, stmt: S) -> S:
        """A query on `Notification` restricted to the reader's own: a notification's text
        names tests and message subjects, so only the person it was sent to reads it."""
        if self.narrow is not None:
            # Acting for someone else shows neither person's notifications: the proxy's own
            # are not about this record, the patient's are not the proxy's to read.
            stmt = stmt.where(false())
        return stmt.where(Notification.user_id == _READER_USER).execution_options(
            portal_scoped=True
        )

    def held(self, stmt: S) -> S:
        """A query on `ProxyGrant` restricted to the grants the reader holds and nobody has
        ended (whether each is in force now is `delegation_for`'s to say)."""
        return stmt.where(
            ProxyGrant.proxy_user_id == _READER_USER, ProxyGrant.ended_at.is_(None)
        ).execution_options(portal_scoped=True)


#: A parent's or guardian's access covers the whole record below this age, and ends at the
#: other (the teen years between: no confidential results, none of the teen's messages).
CHILD_UNTIL, ADULT_AT = 12, 18


def age_on(day: date, born: date) -> int:
    """Whole years from `born` to `day`."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def delegation_for(
    grant: ProxyGrant, born: date | None, patient_user_id: int | None, now: datetime
) -> Delegation | None:
    """What `grant` lets its holder do now, or None when it does not (not begun, ended,
    expired, or a parent's grant for a patient who has turned 18). Decided at every request,
    so a late job or an unsent mail never leaves access open."""
    if grant.ended_at is not None or not grant.starts_at <= now < grant.ends_at:
        return None
    teen = False
    scopes = grant.scope_set
    if grant.relationship in PARENTAL:
        age = None if born is None else age_on(now.date(), born)
        if age is None or age >= ADULT_AT:
            return None
        teen = age >= CHILD_UNTIL
        if teen:  # a teenager's messages are their own, whatever the grant says
            scopes = scopes - {ProxyScope.MESSAGES}
    return Delegation(grant.id, grant.patient_id, patient_user_id, scopes, grant.ends_at, teen)


def acting_for(actor: Actor, delegation: Delegation) -> Actor:
    """`actor` acting for `delegation`'s patient: the patient's reads, narrowed by the grant.
    Only a patient-role account (a person with their own portal account) acts for another."""
    if actor.role is not Role.PATIENT:
        raise NotFound()
    return replace(actor, patient_id=delegation.patient_id, acting_for=delegation)


def scoped(build: Callable[..., B], actor: Actor, *shape: Shape) -> B:
    """What `build` makes for the actor's role (and `shape`), built on first use, then reused.

    `build` must be a module-level function: its identity is the cache key, and a lambda or
    closure made per call would grow the cache without bound. `shape` are the few values the
    statement's form depends on besides the role (which optional filters are present, a model
    class), never a value from the request. Run what it returns with `reader(actor, ...)`.
    """
    if "<" in build.__qualname__:  # "<lambda>", "<locals>"
        raise TypeError(f"scoped() needs a module-level builder, not {build.__qualname__}")
    if not all(s is None or isinstance(s, bool | enum.Enum | type) for s in shape):
        raise TypeError("a statement's shape is booleans, enum members or classes only")
    narrow = Narrowing.of(actor.acting_for)
    key = (build, actor.role, narrow, shape)
    built = _BUILT.get(key)
    if built is None:
        built = _BUILT[key] = build(RoleScope(actor.role, narrow), *shape)
    return built


def reader(actor: Actor, **params: Any) -> dict[str, Any]:
    """Execution parameters for a scoped statement: the reader's ids, plus `params`. Acting
    for someone else, "me" in a statement (a thread's participant, a message's recipient) is
    the patient whose record it is; what the proxy writes is still signed by the proxy."""
    delegation = actor.acting_for
    return {
        "reader_patient_id": actor.patient_id,
        "reader_provider_id": actor.provider_id,
        "reader_user_id": actor.user_id if delegation is None else delegation.patient_user_id,
        **params,
    }


def get_or_404(session: Session, model: type[M], record_id: int, actor: Actor) -> M:
    """One record the actor may read; a record that isn't theirs is exactly a missing one.

    A read and nothing else: what a response showed is declared by its route or named by the
    screen's read model (`web.audit_reads`), never by which record was fetched first.

    So is an id no row can have (a URL's `<int:...>` takes any number of digits, which the
    database driver would refuse to bind as a 64-bit integer).
    """
    if not 0 < record_id <= MAX_ID:
        raise NotFound()
    row = session.scalar(scoped(_one_by_id, actor, model), reader(actor, record_id=record_id))
    if row is None:
        raise NotFound()
    return row


def require_visible(session: Session, actor: Actor, patient_id: int) -> None:
    """404 unless the actor may see patient `patient_id` at all (a list of their records is
    then theirs to ask for, however empty); an id no row can have is a missing patient."""
    if not 0 < patient_id <= MAX_ID:
        raise NotFound()
    params = reader(actor, record_id=patient_id)
    if session.scalar(scoped(_patient_by_id, actor), params) is None:
        raise NotFound()


def _patient_by_id(rs: RoleScope) -> Select[int]:
    by_id = select(PatientProfile.id).where(
        PatientProfile.id == bindparam("record_id", type_=Integer)
    )
    return rs.patients(by_id)


def _one_by_id(rs: RoleScope, model: Any) -> Any:
    by_id = select(model).where(model.id == bindparam("record_id", type_=Integer))
    return rs.patients(by_id) if model is PatientProfile else rs.scope(by_id, model)


def unscoped(stmt: S, reason: str) -> S:
    """Opt out of scoping by name: demo seeding, audit verification, event fan-out, jobs."""
    return stmt.execution_options(portal_scoped=True, portal_unscoped_reason=reason)


class UnscopedQueryError(RuntimeError):
    """A query read protected health information without going through `scope`."""


def union_of(*parts: Select[*tuple[Any, ...]]) -> CompoundSelect:
    """Statements answered in one round trip (UNION ALL): each is scoped, or unscoped by name,
    on its own, and the union is only marked so when every part is."""
    if not all(part.get_execution_options().get("portal_scoped") for part in parts):
        raise UnscopedQueryError("every part of a union is scoped (or unscoped by name) first")
    return union_all(*parts).execution_options(portal_scoped=True)


def _guarded_table_names() -> frozenset[str]:
    """Tables whose rows no query reads unscoped: every patient-owned table, the patients'
    demographics (names, dates of birth, MRNs, contacts) and notifications (their text
    names tests and message subjects)."""
    return frozenset(
        mapper.local_table.name  # type: ignore[attr-defined]
        for mapper in Base.registry.mappers
        if issubclass(mapper.class_, (PatientOwned, PatientProfile, Notification))
    )


_GUARDED_TABLES = _guarded_table_names()
#: The verdict on each statement object seen (the guarded table it reads, or None). Statements
#: are immutable, and the ones built once at import time run on every request: this spares
#: them the walk. Weak keys, so a statement built for one request goes with it.
_VERDICTS: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()


#: Schema changes (a migration, a test's trigger) name tables without reading their rows.
_DDL = re.compile(r"\s*(CREATE|DROP|ALTER)\b", re.IGNORECASE)
#: A guarded table's name as a word of SQL written out by hand (`text()`, `from_statement`).
_GUARDED_WORD = re.compile(r"\b(" + "|".join(sorted(_GUARDED_TABLES)) + r")\b", re.IGNORECASE)


def guarded_table_read_by(stmt: Any) -> str | None:
    """The name of a guarded table `stmt` reads in any way, or None.

    Reads means: selects its rows or columns, joins it, filters on it (in WHERE, in a
    subquery, an EXISTS, a CTE), counts it, through an alias as well, or names it in SQL
    text. One walk over every element of the statement (what `find_tables` does, plus text).
    """
    name: str | None
    for element in visitors.iterate(stmt):
        if isinstance(element, TableClause):
            name = element.name
        elif isinstance(element, ColumnClause):
            name = getattr(element.table, "name", None)
        elif isinstance(element, TextClause):
            match = None if _DDL.match(element.text) else _GUARDED_WORD.search(element.text)
            name = match.group(1).lower() if match else None
        else:
            continue
        if name in _GUARDED_TABLES:
            return name
    return None


@event.listens_for(Session, "do_orm_execute")
def _fail_closed(state: ORMExecuteState) -> None:
    """Refuse any top-level read of a guarded table that did not go through a scope.

    A statement is let through when a `RoleScope` rule (`rs.scope`, `rs.patients`, `rs.own`,
    as `scoped` and `get_or_404` build them) or `unscoped(stmt, reason)` marked it. Otherwise
    it is refused if it selects, joins, filters on or counts any guarded table, not only if it
    returns rows of one: `select(PatientProfile.display_name).join(LabResult, ...).where(
    LabResult.test_code == ...)` reveals who had that test as surely as the rows would.
    """
    if state.is_column_load or state.is_relationship_load:
        return
    # Only a change is let through unread: `text()` and `from_statement` reads are not
    # `is_select`, and would otherwise pass unseen.
    if state.is_insert or state.is_update or state.is_delete:
        return
    if state.execution_options.get("portal_scoped"):
        return
    stmt = state.statement
    try:
        found = _VERDICTS[stmt]
    except KeyError:
        found = _VERDICTS[stmt] = guarded_table_read_by(stmt)
    except TypeError:  # a statement that can't be weakly referenced: judge it every time
        found = guarded_table_read_by(stmt)
    if found is not None:
        raise UnscopedQueryError(f"unscoped read of {found}")

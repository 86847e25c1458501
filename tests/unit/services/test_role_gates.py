"""Role gates: every service verb that calls `require` refuses, by itself, whoever may not.

`VERBS` lists each such verb with minimal valid arguments and the permission it needs; the
parametrized tests derive from `ROLE_PERMISSIONS` and `METHOD_PERMISSIONS` which (role, way of
signing in) must get a 403 and which must get through. `test_the_table_names_every_require_call`
reads the services' source, so a new `require(...)` (or a changed permission) the table doesn't
list fails the suite instead of going untested.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import CodeType, TracebackType
from typing import Any

import pytest
from sqlalchemy import func, select
from werkzeug.exceptions import Forbidden

import portal.services
from portal import access
from portal.access import METHOD_PERMISSIONS, ROLE_PERMISSIONS, Actor, Permission
from portal.db import utcnow
from portal.demo import MINIMAL_PDF
from portal.models import (
    AppointmentStatus,
    AuditEvent,
    AuthMethod,
    AvailabilityException,
    AvailabilityRule,
    BookingMode,
    CareAssignmentRequest,
    LabResult,
    PatientProfile,
    ProxyRelationship,
    ProxyScope,
    ReleaseMode,
    ResultStatus,
    Role,
    User,
    UserSession,
)
from portal.services import (
    account_admin,
    accounts,
    appointments,
    attachments,
    labs,
    messaging,
    patients,
    plans,
    profiles,
    proxies,
    record_export,
    recovery,
    schedule,
    sessions,
    settings,
    two_factor,
)
from tests.support import PASSWORD, sign_in_limits
from tests.unit.services.conftest import World, first

Args = tuple[tuple[Any, ...], dict[str, Any]]

#: The demo account that plays each role.
ROLE_ACTORS = {Role.PATIENT: "alice", Role.PROVIDER: "dr_chen", Role.ADMIN: "admin"}


def call(*args: Any, **kwargs: Any) -> Args:
    return args, kwargs


@dataclass(frozen=True)
class Verb:
    """A service function `fn(session, actor, ...)`, the permission it checks, and arguments
    with which an actor who holds that permission succeeds."""

    fn: Callable[..., Any]
    permission: Permission
    args: Callable[[World, Actor], Args]

    @property
    def name(self) -> str:
        # As callers name it: `labs.create_result`, wherever in the `labs` package it lives.
        module = self.fn.__module__.removeprefix("portal.services.").split(".")[0]
        return f"{module}.{self.fn.__name__}"

    def __call__(self, world: World, actor: Actor) -> Any:
        args, kwargs = self.args(world, actor)
        return self.fn(world.session, actor, *args, **kwargs)


# --- Arguments that need a row made first ---


def _patient_to_invite(w: World, _a: Actor) -> Args:
    patient = PatientProfile(
        medical_record_number="MRN-T-0003", display_name="Test Patient", contact_email="t@x.org"
    )
    w.session.add(patient)
    w.session.flush()
    return call(patient, portal_url="http://portal.test")


def _staff_not_joined(w: World, _a: Actor) -> Args:
    user = User(email="waiting.staff@example.org", role=Role.PROVIDER)
    w.session.add(user)
    w.session.flush()
    return call(user, portal_url="http://portal.test")


def _waiting_assignment(w: World, _a: Actor) -> Args:
    row = CareAssignmentRequest(
        patient_id=w.patient_id,
        provider_id=w.okafor_provider_id,
        requested_by_id=w.people.user("bob").id,
    )
    w.session.add(row)
    w.session.flush()
    return call(patient_id=w.patient_id, request_id=row.id, confirm=False)


def _own_rule(w: World, a: Actor) -> Args:
    rule = AvailabilityRule(
        provider_id=a.provider_id or w.chen_provider_id,
        weekday=6,
        start_minute=600,
        end_minute=660,
        slot_minutes=30,
    )
    w.session.add(rule)
    w.session.flush()
    return call(rule.id)


def _own_day_off(w: World, a: Actor) -> Args:
    row = AvailabilityException(
        provider_id=a.provider_id or w.chen_provider_id, day=w.today + timedelta(days=40)
    )
    w.session.add(row)
    w.session.flush()
    return call(row.id)


def _own_other_session(w: World, a: Actor) -> Args:
    user = w.session.get_one(User, a.user_id)
    token = sessions.start(w.session, user, method=AuthMethod.SESSION, client="Test phone")
    row_id = w.session.scalar(
        select(UserSession.id).where(UserSession.token_hash == sessions.token_hash(token))
    )
    return call(row_id)


def _open_slot(w: World, _a: Actor) -> Args:
    start, _end, _location = appointments.open_slots(
        w.session, w.chen_provider_id, w.today + timedelta(days=1)
    )[0]
    return call(
        patient_id=w.patient_id, provider_id=w.chen_provider_id, start_at=start, reason="Check-up"
    )


def _slots_in_three_days(w: World) -> list[datetime]:
    """Dr Chen's open starts from three days on (a week: weekends have none), past any
    cut-off whatever weekday the suite runs on."""
    found = appointments.open_slots(w.session, w.chen_provider_id, w.today + timedelta(days=3), 7)
    return [start for start, _end, _where in found]


def _alices_request(w: World) -> int:
    """A visit alice requests three or more days ahead (from a patient: a request)."""
    visit = appointments.book(
        w.session,
        w.actor("alice"),
        patient_id=w.patient_id,
        provider_id=w.chen_provider_id,
        start_at=_slots_in_three_days(w)[0],
        reason="Check-up",
    )
    return visit.id


def _to_another_time(w: World, _a: Actor) -> Args:
    visit_id = _alices_request(w)
    return call(visit_id, _slots_in_three_days(w)[0])


def _proposed(w: World, _a: Actor) -> Args:
    """Alice's request, answered by dr.chen with another time that waits for her."""
    visit_id = _alices_request(w)
    appointments.propose(w.session, w.actor("dr_chen"), visit_id, _slots_in_three_days(w)[0])
    return call(visit_id)


def _new_thread(w: World, a: Actor) -> Args:
    # A patient writes to their care team, a provider to the patient.
    to = w.people.user("dr_chen") if a.role is Role.PATIENT else w.people.user("alice")
    return call(patient_id=w.patient_id, recipient_user_id=to.id, subject="Hello", body="Hi")


def _first_code(w: World, a: Actor) -> Args:
    """A started enrolment (by the same person at the sign-in page) and its first code."""
    at_the_page = dataclasses.replace(a, via=AuthMethod.SESSION)
    return call(two_factor.current_code(two_factor.start(w.session, at_the_page).secret))


def _two_factor_on(w: World, a: Actor) -> Args:
    """Two-step sign-in on, and the app's code for the next time step (this one is spent)."""
    at_the_page = dataclasses.replace(a, via=AuthMethod.SESSION)
    secret = two_factor.start(w.session, at_the_page).secret
    two_factor.confirm(w.session, at_the_page, two_factor.current_code(secret))
    later = utcnow() + timedelta(seconds=two_factor.STEP_SECONDS)
    return call(two_factor.current_code(secret, later), limits=sign_in_limits())


def _a_proxy_grant(w: World, _a: Actor) -> Args:
    return call(
        w.people.user("bob"),
        ProxyRelationship.CAREGIVER,
        frozenset({ProxyScope.APPOINTMENTS}),
    )


def _a_recorded_grant(w: World, _a: Actor) -> Args:
    return call(
        w.patient_id,
        w.people.user("bob"),
        ProxyRelationship.CAREGIVER,
        frozenset({ProxyScope.APPOINTMENTS}),
        legal_basis="lasting power of attorney",
        ends_at=utcnow() + timedelta(days=30),
    )


PM = Permission
VERBS: tuple[Verb, ...] = (
    # proxies
    Verb(proxies.grant, PM.SHARE_OWN_RECORD, _a_proxy_grant),
    Verb(proxies.grants_on_my_record, PM.READ_OWN_RECORDS, lambda w, a: call()),
    Verb(proxies.record_grant, PM.CARE_TEAMS_MANAGE, _a_recorded_grant),
    # accounts
    Verb(
        accounts.register_patient,
        PM.ACCOUNTS_MANAGE,
        lambda w, a: call(medical_record_number="MRN-T-0002", display_name="New Patient"),
    ),
    Verb(accounts.issue_activation_code, PM.ACCOUNTS_MANAGE, _patient_to_invite),
    Verb(accounts.resend_invitation, PM.ACCOUNTS_MANAGE, _staff_not_joined),
    Verb(
        accounts.reset_patient_access,
        PM.ACCOUNTS_MANAGE,
        lambda w, a: call(w.people.user("bob").patient, portal_url="http://portal.test"),
    ),
    Verb(
        recovery.send_reset,
        PM.ACCOUNTS_MANAGE,
        lambda w, a: call(w.people.user("bob"), portal_url="http://portal.test"),
    ),
    Verb(account_admin.search_users, PM.ACCOUNTS_MANAGE, lambda w, a: call("bob")),
    Verb(account_admin.user_or_404, PM.ACCOUNTS_MANAGE, lambda w, a: call(w.people.user("bob").id)),
    Verb(
        account_admin.account_screen,
        PM.ACCOUNTS_MANAGE,
        lambda w, a: call(
            w.people.user("bob").id, idle=timedelta(minutes=30), absolute=timedelta(hours=12)
        ),
    ),
    Verb(account_admin.clear_pause, PM.ACCOUNTS_MANAGE, lambda w, a: call(w.people.user("bob").id)),
    Verb(
        account_admin.end_sessions,
        PM.ACCOUNTS_MANAGE,
        lambda w, a: call(w.people.user("bob").id, None),
    ),
    Verb(
        account_admin.edit_user,
        PM.ACCOUNTS_MANAGE,
        lambda w, a: call(
            w.people.user("dr_okafor").id, email="okafor@example.org", display_name="O"
        ),
    ),
    Verb(
        account_admin.edit_patient,
        PM.ACCOUNTS_MANAGE,
        lambda w, a: call(
            w.people.user("bob").patient.id,
            medical_record_number="MRN-T-0009",
            display_name="Bob O",
            date_of_birth=None,
            primary_clinic=None,
            contact_email=None,
            contact_phone=None,
        ),
    ),
    Verb(accounts.decide_assignment, PM.CARE_TEAMS_MANAGE, _waiting_assignment),
    Verb(
        accounts.create_staff,
        PM.ACCOUNTS_MANAGE,
        lambda w, a: call(email="new.staff@example.org", role=Role.PROVIDER, display_name="Dr X"),
    ),
    Verb(
        accounts.change_password,
        PM.OWN_ACCOUNT,
        lambda w, a: call(
            current_password=PASSWORD,
            new_password="a new and long passphrase",
            limits=sign_in_limits(),
        ),
    ),
    Verb(
        accounts.set_active,
        PM.ACCOUNTS_MANAGE,
        lambda w, a: call(w.people.user("bob"), active=False),
    ),
    Verb(
        accounts.assign_provider,
        PM.CARE_TEAMS_MANAGE,
        lambda w, a: call(patient_id=w.patient_id, provider_id=w.okafor_provider_id),
    ),
    Verb(
        accounts.unassign_provider,
        PM.CARE_TEAMS_MANAGE,
        lambda w, a: call(patient_id=w.patient_id, provider_id=w.chen_provider_id),
    ),
    Verb(accounts.care_team_screen, PM.CARE_TEAMS_MANAGE, lambda w, a: call(w.patient_id)),
    # sessions
    Verb(
        sessions.active_for,
        PM.OWN_ACCOUNT,
        lambda w, a: call(idle=timedelta(minutes=30), absolute=timedelta(hours=12)),
    ),
    Verb(sessions.end_one, PM.OWN_ACCOUNT, _own_other_session),
    Verb(sessions.end_others, PM.OWN_ACCOUNT, lambda w, a: call()),
    # two-step sign-in
    Verb(two_factor.start, PM.OWN_ACCOUNT, lambda w, a: call()),
    Verb(two_factor.confirm, PM.OWN_ACCOUNT, _first_code),
    Verb(two_factor.regenerate, PM.OWN_ACCOUNT, _two_factor_on),
    Verb(two_factor.turn_off, PM.OWN_ACCOUNT, _two_factor_on),
    # schedule
    Verb(
        schedule.visits,
        PM.APPOINTMENT_MANAGE,
        lambda w, a: call(schedule.Period.of("week", w.today)),
    ),
    Verb(schedule.rules, PM.SCHEDULE_MANAGE, lambda w, a: call()),
    Verb(schedule.exceptions, PM.SCHEDULE_MANAGE, lambda w, a: call(w.today)),
    Verb(
        schedule.add_rule,
        PM.SCHEDULE_MANAGE,
        lambda w, a: call(
            weekday=6, start_minute=600, end_minute=660, slot_minutes=30, location=None
        ),
    ),
    Verb(schedule.remove_rule, PM.SCHEDULE_MANAGE, _own_rule),
    Verb(
        schedule.add_exception,
        PM.SCHEDULE_MANAGE,
        lambda w, a: call(day=w.today + timedelta(days=41), reason=None, today=w.today),
    ),
    Verb(schedule.remove_exception, PM.SCHEDULE_MANAGE, _own_day_off),
    # messaging
    Verb(messaging.start_conversation, PM.MESSAGE_SEND, _new_thread),
    Verb(messaging.reply, PM.MESSAGE_SEND, lambda w, a: call(w.conversation_id, body="Thanks")),
    Verb(messaging.inbox, PM.MESSAGE_SEND, lambda w, a: call()),
    # settings
    Verb(settings.set_message_retention_days, PM.SETTINGS_MANAGE, lambda w, a: call(2190)),
    Verb(settings.set_category_rules, PM.SETTINGS_MANAGE, lambda w, a: call(True)),
    Verb(
        settings.set_release_policy,
        PM.SETTINGS_MANAGE,
        lambda w, a: call(
            category="chemistry",
            mode=ReleaseMode.HOLD_FOR_REVIEW,
            delay_hours=None,
            never_auto_release=False,
        ),
    ),
    # appointments
    Verb(appointments.book, PM.APPOINTMENT_BOOK, _open_slot),
    Verb(appointments.list_for, PM.APPOINTMENT_BOOK, lambda w, a: call(upcoming=True)),
    Verb(
        appointments.slots_for,
        PM.APPOINTMENT_BOOK,
        lambda w, a: call(w.people.user("dr_chen").id, start=w.today, days=7),
    ),
    Verb(
        appointments.set_status,
        PM.APPOINTMENT_MANAGE,
        lambda w, a: call(_alices_request(w), AppointmentStatus.SCHEDULED),
    ),
    Verb(
        appointments.decline,
        PM.APPOINTMENT_MANAGE,
        lambda w, a: call(_alices_request(w), "Please see the nurse first"),
    ),
    Verb(appointments.propose, PM.APPOINTMENT_MANAGE, _to_another_time),
    Verb(appointments.reschedule, PM.APPOINTMENT_BOOK, _to_another_time),
    Verb(appointments.accept, PM.APPOINTMENT_ACCEPT, _proposed),
    Verb(schedule.booking_mode, PM.SCHEDULE_MANAGE, lambda w, a: call()),
    Verb(schedule.requests, PM.APPOINTMENT_MANAGE, lambda w, a: call()),
    Verb(schedule.set_booking_mode, PM.SCHEDULE_MANAGE, lambda w, a: call(BookingMode.DIRECT)),
    # profiles
    Verb(profiles.own_profile, PM.READ_OWN_RECORDS, lambda w, a: call()),
    Verb(profiles.set_provider_mail, PM.OWN_ACCOUNT, lambda w, a: call(messages=True)),
    Verb(profiles.set_time_zone, PM.OWN_ACCOUNT, lambda w, a: call("Europe/Lisbon")),
    # patients
    Verb(patients.search, PM.PATIENTS_LIST, lambda w, a: call()),
    # labs
    Verb(labs.latest_page, PM.LAB_RESULT_READ, lambda w, a: call(labs.LabFilter())),
    Verb(labs.latest_rows, PM.LAB_RESULT_READ, lambda w, a: call(labs.LabFilter())),
    Verb(labs.result_history, PM.LAB_RESULT_READ, lambda w, a: call(w.published_result_id)),
    Verb(
        labs.create_result,
        PM.LAB_RESULT_WRITE,
        lambda w, a: call(
            w.patient_id,
            test_code="2345-7",
            test_name="Glucose",
            data=labs.ResultInput("5.1", "mmol/L", "3.9-5.5", ResultStatus.FINAL),
        ),
    ),
    Verb(
        labs.add_version,
        PM.LAB_RESULT_WRITE,
        lambda w, a: call(
            w.published_result_id,
            labs.ResultInput("2.3", "mIU/L", "0.4-4.0", ResultStatus.CORRECTED),
            reason="Recalibrated analyser",
        ),
    ),
    Verb(labs.review_and_release, PM.LAB_RESULT_WRITE, lambda w, a: call(w.held_result_id)),
    Verb(
        labs.finalize,
        PM.LAB_RESULT_WRITE,
        lambda w, a: call(
            first(
                w.session,
                select(LabResult.id).where(
                    LabResult.patient_id == w.patient_id, LabResult.published_at.is_(None)
                ),
            ),
            labs.ResultInput("101", "mg/dL", "70-99", ResultStatus.FINAL),
        ),
    ),
    Verb(
        labs.hold_result,
        PM.LAB_RESULT_WRITE,
        lambda w, a: call(
            w.held_result_id, reason="Explained in person", until=utcnow() + timedelta(days=2)
        ),
    ),
    Verb(
        labs.attach_current_report,
        PM.LAB_RESULT_WRITE,
        lambda w, a: call(w.published_result_id, attachments.Upload("report.pdf", MINIMAL_PDF)),
    ),
    Verb(
        labs.attach_report,
        PM.LAB_RESULT_WRITE,
        lambda w, a: call(w.published_version(), attachments.Upload("report.pdf", MINIMAL_PDF)),
    ),
    # plans
    Verb(
        plans.create_draft,
        PM.PLAN_WRITE,
        lambda w, a: call(w.patient_id, plans.PlanInput("Sleep", "Eight hours.")),
    ),
    Verb(
        plans.revise,
        PM.PLAN_WRITE,
        lambda w, a: call(w.active_plan_id, plans.PlanInput("Diabetes", "Metformin.")),
    ),
    Verb(plans.activate, PM.PLAN_WRITE, lambda w, a: call(w.draft_plan_id)),
    Verb(
        plans.activate_saying,
        PM.PLAN_WRITE,
        lambda w, a: call(w.draft_plan_id, complete_others=False),
    ),
    Verb(plans.complete, PM.PLAN_WRITE, lambda w, a: call(w.active_plan_id)),
    Verb(plans.acknowledge, PM.PLAN_ACKNOWLEDGE, lambda w, a: call(w.active_plan_id)),
    Verb(plans.list_for, PM.PLAN_READ, lambda w, a: call(patient_id=w.patient_id)),
    # the patient's own record, to take away
    Verb(record_export.gather, PM.READ_OWN_RECORDS, lambda w, a: call()),
)


# --- Which calls must be refused and which must get through, derived from access's tables ---


def _cases(want: Callable[[Verb, Role], list[AuthMethod]]) -> list[Any]:
    return [
        pytest.param(verb, role, via, id=f"{verb.name}-{role}-{via}")
        for verb in VERBS
        for role in Role
        for via in want(verb, role)
    ]


def _refused_by_role(verb: Verb, role: Role) -> list[AuthMethod]:
    return [AuthMethod.SESSION] if verb.permission not in ROLE_PERMISSIONS[role] else []


def _refused_by_method(verb: Verb, role: Role) -> list[AuthMethod]:
    if verb.permission not in ROLE_PERMISSIONS[role]:
        return []
    return [m for m in AuthMethod if verb.permission not in METHOD_PERMISSIONS[m]]


def _allowed(verb: Verb, role: Role) -> list[AuthMethod]:
    if verb.permission not in ROLE_PERMISSIONS[role]:
        return []
    return [m for m in AuthMethod if verb.permission in METHOD_PERMISSIONS[m]]


REFUSED_BY_ROLE = _cases(_refused_by_role)
REFUSED_BY_METHOD = _cases(_refused_by_method)
ALLOWED = _cases(_allowed)


def _actor(world: World, role: Role, via: AuthMethod) -> Actor:
    return dataclasses.replace(world.actor(ROLE_ACTORS[role]), via=via)


def _caller_of_require(tb: TracebackType | None) -> CodeType | None:
    """The code that called `access.require` in this traceback (the check that refused)."""
    codes: list[CodeType] = []
    while tb is not None:
        codes.append(tb.tb_frame.f_code)
        tb = tb.tb_next
    if access.require.__code__ not in codes:
        return None
    at = codes.index(access.require.__code__)
    return codes[at - 1] if at > 0 else None


def _assert_refused_by_the_verb_itself(world: World, verb: Verb, actor: Actor) -> None:
    args, kwargs = verb.args(world, actor)
    entries = world.session.scalar(select(func.count(AuditEvent.id)))

    with pytest.raises(Forbidden) as refused:
        verb.fn(world.session, actor, *args, **kwargs)

    # The verb's own check refused, not one in a helper it calls further on: deleting the
    # verb's `require` must turn this red even where a nested check would still say 403.
    assert _caller_of_require(refused.tb) is inspect.unwrap(verb.fn).__code__
    assert world.session.scalar(select(func.count(AuditEvent.id))) == entries


@pytest.mark.parametrize(("verb", "role", "via"), REFUSED_BY_ROLE)
def test_a_role_without_the_permission_is_refused(
    world: World, verb: Verb, role: Role, via: AuthMethod
) -> None:
    _assert_refused_by_the_verb_itself(world, verb, _actor(world, role, via))


@pytest.mark.parametrize(("verb", "role", "via"), REFUSED_BY_METHOD)
def test_a_token_is_refused_what_needs_the_person_at_the_sign_in_page(
    world: World, verb: Verb, role: Role, via: AuthMethod
) -> None:
    _assert_refused_by_the_verb_itself(world, verb, _actor(world, role, via))


@pytest.mark.parametrize(("verb", "role", "via"), ALLOWED)
def test_a_role_with_the_permission_gets_through(
    world: World, verb: Verb, role: Role, via: AuthMethod
) -> None:
    # The same arguments succeed for an actor who may: the refusals above are the gate's.
    verb(world, _actor(world, role, via))


def test_a_token_never_manages_accounts_care_teams_settings_or_its_owners_account() -> None:
    # The cases above follow METHOD_PERMISSIONS; this pins the table itself.
    assert set(Permission) - METHOD_PERMISSIONS[AuthMethod.TOKEN] == {
        Permission.ACCOUNTS_MANAGE,
        Permission.CARE_TEAMS_MANAGE,
        Permission.SETTINGS_MANAGE,
        Permission.OWN_ACCOUNT,
        Permission.SHARE_OWN_RECORD,
    }
    assert METHOD_PERMISSIONS[AuthMethod.SESSION] == set(Permission)


def test_the_cases_cover_each_role_and_each_way_of_signing_in() -> None:
    ids = {p.id for p in REFUSED_BY_METHOD}
    for expected in (
        "accounts.change_password-patient-token",
        "accounts.set_active-admin-token",
        "sessions.end_others-provider-token",
        "accounts.assign_provider-admin-token",
        "settings.set_release_policy-admin-token",
    ):
        assert expected in ids
    allowed = {p.id for p in ALLOWED}
    assert "plans.acknowledge-patient-token" in allowed
    assert "labs.create_result-provider-token" in allowed
    refused = {p.id for p in REFUSED_BY_ROLE}
    assert "labs.create_result-patient-session" in refused
    assert "plans.acknowledge-provider-session" in refused
    # Every verb is refused to some role or some way of signing in.
    assert {v.name for v in VERBS} == {
        p.id.rsplit("-", 2)[0] for p in REFUSED_BY_ROLE + REFUSED_BY_METHOD
    }


# --- The table against the source ---


def _require_calls() -> dict[str, set[str]]:
    """`module.function` → the permissions it passes to `require`, read from the source."""
    found: dict[str, set[str]] = {}
    services = Path(portal.services.__file__).parent
    for path in sorted(services.rglob("*.py")):
        # A package's modules (`labs/publishing.py`) count under its name, as `Verb.name` does.
        public = path.relative_to(services).parts[0].removesuffix(".py")
        tree = ast.parse(path.read_text(), filename=str(path))
        in_functions = 0
        for top in tree.body:
            if not isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(top):
                if isinstance(inner, ast.Call) and _is_require(inner.func):
                    name = f"{public}.{top.name}"
                    found.setdefault(name, set()).add(_permission_of(inner, name))
                    in_functions += 1
        # A check in a method or at module level would escape the table: make it fail here.
        everywhere = sum(isinstance(n, ast.Call) and _is_require(n.func) for n in ast.walk(tree))
        assert everywhere == in_functions, f"{path.name}: require() outside a module function"
    return found


def _is_require(func: ast.expr) -> bool:
    return (isinstance(func, ast.Name) and func.id == "require") or (
        isinstance(func, ast.Attribute) and func.attr == "require"
    )


def _permission_of(node: ast.Call, where: str) -> str:
    arg = node.args[1] if len(node.args) > 1 else None
    unreadable = f"{where}: require()'s permission is not written Permission.X"
    assert isinstance(arg, ast.Attribute), unreadable
    assert isinstance(arg.value, ast.Name), unreadable
    assert arg.value.id == "Permission", unreadable
    return arg.attr


def test_the_table_names_every_require_call() -> None:
    in_source = _require_calls()
    in_table = {v.name: {v.permission.name} for v in VERBS}

    assert len(in_source) >= 30, "the source reader found too few require() calls"
    missing = sorted(set(in_source) - set(in_table))
    assert not missing, f"service verbs that call require() but VERBS does not test: {missing}"
    stale = sorted(set(in_table) - set(in_source))
    assert not stale, f"VERBS lists functions that no longer call require(): {stale}"
    differ = {n: (in_source[n], in_table[n]) for n in in_source if in_source[n] != in_table[n]}
    assert not differ, f"(source, table) permissions differ: {differ}"

"""What every template can use: the navigation for the signed-in role and the unread badge."""

from __future__ import annotations

import enum
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import get_datetime_format
from flask import Flask, g, has_request_context, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _p
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from wtforms.fields.choices import SelectChoice

from portal import zones
from portal.auth.forms import TimeZoneForm
from portal.extensions import db
from portal.i18n import day_text, reader, time_text
from portal.models import (
    AppointmentStatus,
    Flag,
    LabResultVersion,
    PlanStatus,
    ProxyScope,
    ResultStatus,
    Role,
)
from portal.services import attachments, notifications
from portal.services.catalog import human_units
from portal.web.identity import current_account, record_actor, signed_in_actor

#: The nav's labels are translated when shown; `endpoint` is what the template keys on.
#: What each proxy scope opens, as the patient reads it.
PROXY_SCOPE_TEXT = {
    ProxyScope.LAB_RESULTS: _l("lab results"),
    ProxyScope.TREATMENT_PLANS: _l("treatment plans"),
    ProxyScope.MESSAGES: _l("messages"),
    ProxyScope.APPOINTMENTS: _l("appointments"),
    ProxyScope.RECORD: _l("the whole record to download"),
}

#: The scope of a proxy grant that opens each patient page of the navigation (None: any
#: grant; a page not named here, such as one's own profile, is never a proxy's).
NAV_SCOPES: dict[str, ProxyScope | None] = {
    "patient.dashboard": None,
    "patient.lab_results": ProxyScope.LAB_RESULTS,
    "patient.treatment_plans": ProxyScope.TREATMENT_PLANS,
    "patient.messages": ProxyScope.MESSAGES,
    "patient.appointments": ProxyScope.APPOINTMENTS,
}

NAV: dict[Role, list[tuple[Any, str]]] = {
    Role.PATIENT: [
        (_l("Dashboard"), "patient.dashboard"),
        (_l("Lab results"), "patient.lab_results"),
        (_l("Treatment plans"), "patient.treatment_plans"),
        (_l("Messages"), "patient.messages"),
        (_l("Appointments"), "patient.appointments"),
        (_l("Profile"), "patient.profile"),
    ],
    Role.PROVIDER: [
        (_l("Patients"), "staff.patients"),
        (_l("Messages"), "staff.messages"),
        (_l("Appointments"), "staff.appointments"),
        (_l("Notifications"), "staff.notifications_list"),
        (_l("Profile"), "auth.account"),
    ],
    Role.ADMIN: [
        (_l("Patients"), "admin.patients"),
        (_l("Audit log"), "admin.audit_log"),
        (_l("Users"), "admin.users"),
        (_l("Profile"), "auth.account"),
    ],
}

#: A flag in words, for patients first: the word says what the colour only reinforces.
FLAG_TEXT: dict[Flag, Any] = {
    Flag.NORMAL: _l("Normal"),
    Flag.LOW: _l("Low"),
    Flag.HIGH: _l("High"),
    Flag.CRITICAL_LOW: _l("Critically low"),
    Flag.CRITICAL_HIGH: _l("Critically high"),
    Flag.ABNORMAL: _l("Abnormal"),
    Flag.UNKNOWN: "",
}


#: A record's status in words, per kind of record: in Spanish a cancelled result and a
#: cancelled appointment do not take the same ending, so each word has its context.
STATUS_TEXT: dict[tuple[type[enum.Enum], str], Any] = {
    (ResultStatus, ResultStatus.PRELIMINARY.value): _p("lab result", "Preliminary"),
    (ResultStatus, ResultStatus.FINAL.value): _p("lab result", "Final"),
    (ResultStatus, ResultStatus.CORRECTED.value): _p("lab result", "Corrected"),
    (ResultStatus, ResultStatus.AMENDED.value): _p("lab result", "Amended"),
    (ResultStatus, ResultStatus.CANCELLED.value): _p("lab result", "Cancelled"),
    (PlanStatus, PlanStatus.DRAFT.value): _p("treatment plan", "Draft"),
    (PlanStatus, PlanStatus.ACTIVE.value): _p("treatment plan", "Active"),
    (PlanStatus, PlanStatus.COMPLETED.value): _p("treatment plan", "Completed"),
    (AppointmentStatus, AppointmentStatus.REQUESTED.value): _p("appointment", "Requested"),
    (AppointmentStatus, AppointmentStatus.SCHEDULED.value): _p("appointment", "Scheduled"),
    (AppointmentStatus, AppointmentStatus.CANCELLED.value): _p("appointment", "Cancelled"),
    (AppointmentStatus, AppointmentStatus.COMPLETED.value): _p("appointment", "Completed"),
    (AppointmentStatus, AppointmentStatus.NO_SHOW.value): _p("appointment", "Did not attend"),
}


def status_text(status: enum.Enum) -> str:
    """A status (of a lab result version, a plan or an appointment) in the reader's language."""
    # Keyed by class and value: the members of these StrEnums equal their values, so
    # PlanStatus.COMPLETED and AppointmentStatus.COMPLETED would be one key.
    key = (type(status), str(status.value))
    cached = (reader().name, *key)  # a list shows one per row: each word is looked up once
    if cached not in _STATUS_WORDS:
        text = STATUS_TEXT.get(key)
        _STATUS_WORDS[cached] = (
            str(text) if text is not None else key[1].replace("_", " ").capitalize()
        )
    return _STATUS_WORDS[cached]


_STATUS_WORDS: dict[tuple[str, type[enum.Enum], str], str] = {}


def version_status(version: LabResultVersion) -> str:
    """A version's status; a correction or amendment says when it was made (its place in a
    list stays its sample's)."""
    text = status_text(version.status)
    if version.version > 1 and version.status in (ResultStatus.CORRECTED, ResultStatus.AMENDED):
        return f"{text} {_format_date(version.published_at)}"
    return text


#: A role in words.
ROLE_TEXT: dict[Role, Any] = {
    Role.PATIENT: _l("Patient"),
    Role.PROVIDER: _l("Provider"),
    Role.ADMIN: _l("Administrator"),
}


#: The words a notification starts with (services store "New message: <subject>"), as a
#: sentence for the reader; what follows the colon is the record's own name, shown as written.
NOTICE_TEXT: dict[str, Any] = {
    "New lab result": _l("New lab result: %(name)s"),
    "Corrected lab result": _l("Corrected lab result: %(name)s"),
    "New message": _l("New message: %(name)s"),
    "Handed to you": _l("Handed to you: %(name)s"),
}


def notice_text(text: str) -> str:
    """A notification's stored text in the reader's language (its named record as entered)."""
    kind, colon, name = text.partition(": ")
    found = NOTICE_TEXT.get(kind) if colon else None
    if found is None:  # a whole sentence the service marked (N_), or words as written
        return _(text)
    return str(found) % {"name": name}


def _badge(flag: Flag) -> Markup:
    text = FLAG_TEXT[flag]
    if not text:
        return Markup('<span class="muted">—</span>')
    kind = "critical" if flag.value.startswith("critical") else flag.value.split("_")[-1]
    return Markup('<span class="flag flag-{}">{}</span>').format(kind, text)


#: The flag as words in a span (colour and shape only reinforce), built once per flag and
#: language: the lists show one per row, and an include per row costs more than the rest.
_FLAG_BADGES: dict[tuple[str, Flag], Markup] = {}


def flag_badge(flag: Flag) -> Markup:
    key = (reader().name, flag)
    if key not in _FLAG_BADGES:
        _FLAG_BADGES[key] = _badge(flag)
    return _FLAG_BADGES[key]


def init_app(app: Flask) -> None:
    # The nav links of each role, per script root (URLs don't change while the app runs).
    nav_cache: dict[tuple[Role, str], list[tuple[Any, str, str]]] = {}

    def nav_for(role: Role) -> list[tuple[Any, str, str]]:
        key = (role, request.script_root)
        if key not in nav_cache:
            nav_cache[key] = [
                (label, endpoint, url_for(endpoint))
                for label, endpoint in NAV[role]
                if endpoint in app.view_functions
            ]
        return nav_cache[key]

    @app.context_processor
    def _layout() -> dict[str, Any]:
        actor = record_actor()
        if actor is None:
            return {"viewer": None, "actor": None, "nav_items": [], "unread": {}}
        items = nav_for(actor.role)
        if actor.acting_for is not None:  # only what the grant opens is offered
            scopes = actor.acting_for.scopes
            items = [i for i in items if NAV_SCOPES.get(i[1], "none") in (None, *scopes)]
        # The section is the nav link whose path is the longest prefix of this page's path.
        matches = [
            url for _label, _e, url in items if request.path.startswith(url.rstrip("/") or "/")
        ]
        nav = notifications.nav_state(db.session, actor)
        return {
            "viewer": current_account(),
            "actor": actor,
            "nav_items": items,
            "nav_current": max(matches, key=len) if matches else None,
            "unread": nav.unread,
            # Where the page's socket starts: the stream's position when the page was read.
            "events_position": nav.position,
            # Whose record the page shows, when the person acts for someone else.
            "record_name": g.get("record_name") if actor.acting_for else None,
        }

    app.jinja_env.globals["person"] = _person
    app.jinja_env.globals["attachment_limits"] = attachments.limits
    app.jinja_env.globals["FLAG_TEXT"] = FLAG_TEXT
    app.jinja_env.globals["has_endpoint"] = lambda name: name in app.view_functions
    app.jinja_env.filters["flag_text"] = lambda flag: str(FLAG_TEXT.get(flag, ""))
    app.jinja_env.filters["flag_badge"] = flag_badge
    app.jinja_env.filters["proxy_scope_text"] = lambda scope: str(PROXY_SCOPE_TEXT[scope])
    app.jinja_env.filters["status_text"] = status_text
    app.jinja_env.filters["version_status"] = version_status
    app.jinja_env.filters["notice_text"] = notice_text
    app.jinja_env.filters["role_text"] = lambda role: str(ROLE_TEXT.get(role, role))
    app.jinja_env.filters["result_status_text"] = lambda value: status_text(ResultStatus(value))
    # Words the portal itself stored (a reason it wrote, such as "Moved to another time"),
    # looked up in the catalogs; anything a person typed has no entry and shows as typed.
    app.jinja_env.filters["tr"] = lambda text: _(text) if text else text
    app.jinja_env.filters["units"] = human_units
    app.jinja_env.filters["dt"] = format_datetime
    app.jinja_env.filters["d"] = _format_date
    app.jinja_env.filters["hm"] = _format_time
    app.jinja_env.filters["clinic_day"] = lambda value: zones.local_day(value, zones.clinic_zone())
    app.jinja_env.globals["reader_zone"] = reader_zone
    app.jinja_env.globals["time_zone_form"] = time_zone_form
    app.jinja_env.globals["clinic_zone"] = lambda: zones.clinic_zone().key
    # Shared macros are globals, so a fragment rendered alone (render_block skips a page's
    # top-level imports) has them too. Loaded last: compiling them needs the filters above.
    shared = {
        "_macros/forms.html": ("field", "error_summary", "button_form"),
        "_macros/patients.html": ("patient_search",),
        "_macros/pages.html": ("pager",),
        "_macros/labs.html": ("lab_filters", "lab_row", "staff_lab_row"),
    }
    with app.app_context():
        for template, names in shared.items():
            macros = app.jinja_env.get_template(template).module
            for name in names:
                app.jinja_env.globals[name] = getattr(macros, name)


@pass_context
def _person(context: Context, user_id: int | None) -> str:
    """The display name of a user in the page's `people` map (loaded by the view in one query)."""
    people = context.get("people") or {}
    return people[user_id].display_name if user_id in people else "—"


def reader_zone() -> ZoneInfo:
    """The zone the signed-in reader reads times in: their own choice, else the clinic's
    (worked out once per request)."""
    if not has_request_context():
        return zones.clinic_zone()
    if "reader_zone" not in g:
        account = current_account() if signed_in_actor() is not None else None
        own = zones.zone_named(account.time_zone) if account is not None else None
        g.reader_zone = own or zones.clinic_zone()
    zone: ZoneInfo = g.reader_zone
    return zone


def time_zone_form() -> TimeZoneForm:
    """The reader's time-zone form: the one a refused change left in `g`, else their choice."""
    form: TimeZoneForm | None = g.get("time_zone_form")
    if form is None:
        account = current_account()
        chosen = account.time_zone if account is not None else None
        form = TimeZoneForm(formdata=None, time_zone=chosen or "")
    clinic = _("The clinic's time zone (%(zone)s)", zone=zones.clinic_zone().key)
    form.time_zone.choices = [("", clinic), *((n, n.replace("_", " ")) for n in zones.zone_names())]
    return form


def local(value: datetime) -> datetime:
    """A stored (UTC) moment on the reader's clocks: every time a page shows passes here."""
    return value.astimezone(reader_zone())


def format_datetime(value: datetime | None) -> str:
    """`5 Dec 2026, 09:00 CET` (`2026年12月5日 09:00 CET`, `5 dic 2026, 9:00 CET`): the
    reader's zone, with its abbreviation, in the reader's language."""
    if value is None:
        return ""
    moment = local(value)
    joined = _joined(reader().name).replace("{1}", day_text(moment.date(), "yMMMd"))
    return joined.replace("{0}", time_text(moment)) + moment.strftime(" %Z")


@lru_cache(maxsize=8)
def _joined(locale: str) -> str:
    """How the language joins a day and a time (`{1}, {0}`, `{1} {0}`)."""
    return str(get_datetime_format("medium", locale=locale))


def _format_time(value: datetime | None, zone: bool = True) -> str:
    """`09:00 CET`: the time of day in the reader's zone, with its abbreviation (`zone=False`
    leaves it to the end of a range: `09:00–09:30 CET`)."""
    if value is None:
        return ""
    moment = local(value)
    return time_text(moment) + (moment.strftime(" %Z") if zone else "")


def _format_date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):  # a moment: the reader's day
        value = local(value).date()
    return day_text(value, "yMMMd")


def slot_choices(slots: list[tuple[datetime, datetime, str | None]]) -> list[SelectChoice]:
    """Open slots for a <select>, one <optgroup> per day, on the reader's clocks (the value
    is the moment with its offset, which `appointments.chosen_start` reads back)."""
    choices = [SelectChoice("", _("Choose a time…"))]
    for begin, end in ((local(b), local(e)) for b, e, _where in slots):
        label = f"{time_text(begin)}–{time_text(end)} {begin:%Z}"
        day = day_text(begin.date(), "full")
        choices.append(SelectChoice(begin.isoformat(), label, optgroup=day))
    return choices

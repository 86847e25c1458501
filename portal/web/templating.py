"""What every template can use: the navigation for the signed-in role and the unread badge."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, g, has_request_context, request, url_for
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from wtforms.fields.choices import SelectChoice

from portal import zones
from portal.auth.forms import TimeZoneForm
from portal.auth.identity import current_account, signed_in_actor
from portal.extensions import db
from portal.models import Flag, Role
from portal.services import attachments, notifications
from portal.services.catalog import human_units

NAV: dict[Role, list[tuple[str, str]]] = {
    Role.PATIENT: [
        ("Dashboard", "patient.dashboard"),
        ("Lab results", "patient.lab_results"),
        ("Treatment plans", "patient.treatment_plans"),
        ("Messages", "patient.messages"),
        ("Appointments", "patient.appointments"),
        ("Profile", "patient.profile"),
    ],
    Role.PROVIDER: [
        ("Patients", "staff.patients"),
        ("Messages", "staff.messages"),
        ("Appointments", "staff.appointments"),
        ("Notifications", "staff.notifications_list"),
        ("Profile", "auth.account"),
    ],
    Role.ADMIN: [
        ("Patients", "admin.patients"),
        ("Audit log", "admin.audit_log"),
        ("Users", "admin.users"),
        ("Profile", "auth.account"),
    ],
}

FLAG_TEXT = {
    Flag.NORMAL: "Normal",
    Flag.LOW: "Low",
    Flag.HIGH: "High",
    Flag.CRITICAL_LOW: "Critically low",
    Flag.CRITICAL_HIGH: "Critically high",
    Flag.ABNORMAL: "Abnormal",
    Flag.UNKNOWN: "",
}


def _badge(flag: Flag) -> Markup:
    text = FLAG_TEXT[flag]
    if not text:
        return Markup('<span class="muted">—</span>')
    kind = "critical" if flag.value.startswith("critical") else flag.value.split("_")[-1]
    return Markup('<span class="flag flag-{}">{}</span>').format(kind, text)


#: The flag as words in a span (colour and shape only reinforce), built once per flag: the
#: lists show one per row, and an include per row costs more than the rest of the row.
FLAG_BADGE = {flag: _badge(flag) for flag in Flag}


def init_app(app: Flask) -> None:
    # The nav links of each role, per script root (URLs don't change while the app runs).
    nav_cache: dict[tuple[Role, str], list[tuple[str, str, str]]] = {}

    def nav_for(role: Role) -> list[tuple[str, str, str]]:
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
        actor = signed_in_actor()
        if actor is None:
            return {"viewer": None, "actor": None, "nav_items": [], "unread": {}}
        items = nav_for(actor.role)
        # The section is the nav link whose path is the longest prefix of this page's path.
        matches = [url for _l, _e, url in items if request.path.startswith(url.rstrip("/") or "/")]
        return {
            "viewer": current_account(),
            "actor": actor,
            "nav_items": items,
            "nav_current": max(matches, key=len) if matches else None,
            "unread": notifications.unread_counts(db.session, actor),
        }

    # Shared macros are globals, so a fragment rendered alone (render_block skips a page's
    # top-level imports) has them too.
    shared = {
        "_macros/forms.html": ("field", "error_summary", "button_form"),
        "_macros/patients.html": ("patient_search",),
        "_macros/pages.html": ("pager",),
    }
    with app.app_context():
        for template, names in shared.items():
            macros = app.jinja_env.get_template(template).module
            for name in names:
                app.jinja_env.globals[name] = getattr(macros, name)
    app.jinja_env.globals["person"] = _person
    app.jinja_env.globals["attachment_limits"] = attachments.limits
    app.jinja_env.globals["FLAG_TEXT"] = FLAG_TEXT
    # Where a page's socket starts: the stream's position when the page was read.
    app.jinja_env.globals["events_position"] = lambda: notifications.latest_event_id(db.session)
    app.jinja_env.globals["has_endpoint"] = lambda name: name in app.view_functions
    app.jinja_env.filters["flag_text"] = lambda flag: FLAG_TEXT.get(flag, "")
    app.jinja_env.filters["flag_badge"] = lambda flag: FLAG_BADGE[flag]
    app.jinja_env.filters["units"] = human_units
    app.jinja_env.filters["dt"] = format_datetime
    app.jinja_env.filters["d"] = _format_date
    app.jinja_env.filters["hm"] = _format_time
    app.jinja_env.filters["clinic_day"] = lambda value: zones.local_day(value, zones.clinic_zone())
    app.jinja_env.globals["reader_zone"] = reader_zone
    app.jinja_env.globals["time_zone_form"] = time_zone_form
    app.jinja_env.globals["clinic_zone"] = lambda: zones.clinic_zone().key


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
    clinic = f"The clinic's time zone ({zones.clinic_zone().key})"
    form.time_zone.choices = [("", clinic), *((n, n.replace("_", " ")) for n in zones.zone_names())]
    return form


def local(value: datetime) -> datetime:
    """A stored (UTC) moment on the reader's clocks: every time a page shows passes here."""
    return value.astimezone(reader_zone())


def format_datetime(value: datetime | None) -> str:
    """`5 Dec 2026, 09:00 CET`: the reader's zone, with its abbreviation."""
    return "" if value is None else local(value).strftime("%-d %b %Y, %H:%M %Z")


def _format_time(value: datetime | None, zone: bool = True) -> str:
    """`09:00 CET`: the time of day in the reader's zone, with its abbreviation (`zone=False`
    leaves it to the end of a range: `09:00–09:30 CET`)."""
    return "" if value is None else local(value).strftime("%H:%M %Z" if zone else "%H:%M")


def _format_date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):  # a moment: the reader's day
        value = local(value)
    return value.strftime("%-d %b %Y")


def slot_choices(slots: list[tuple[datetime, datetime, str | None]]) -> list[SelectChoice]:
    """Open slots for a <select>, one <optgroup> per day, on the reader's clocks (the value
    is the moment with its offset, which `appointments.chosen_start` reads back)."""
    choices = [SelectChoice("", "Choose a time…")]
    for begin, end in ((local(b), local(e)) for b, e, _where in slots):
        label = f"{begin:%H:%M}–{end:%H:%M} {begin:%Z}"
        choices.append(SelectChoice(begin.isoformat(), label, optgroup=f"{begin:%A %-d %B %Y}"))
    return choices

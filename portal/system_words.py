"""Words the services store or build for people to read, listed here so that `make messages`
extracts them (issue 27): pages show them through the catalogs (the `tr` filter), so a
translated page does not show the system's English. Anything a person typed has no entry and
shows as typed. (Kept apart from the services so the list can grow without touching them.)
"""

from __future__ import annotations

from flask import Flask


def N_(text: str) -> str:  # noqa: N802  (gettext's name for "mark for extraction only")
    return text


#: A treatment plan version's change note, as `services.plans` writes it.
PLAN_NOTES = (N_("Approved and activated"), N_("Completed"))
#: A device's name, as `services.sessions.describe_client` builds it ("Firefox on Linux").
DEVICES = (N_("A script"), N_("An app"), N_("Unknown client"), N_("%(browser)s on %(system)s"))


def device_name(text: str) -> str:
    """A device's stored name in the reader's language: "Firefox on Linux" keeps the product
    names and translates the rest; "A script" is translated whole."""
    from flask_babel import gettext

    browser, on, system = text.partition(" on ")
    if on:
        return gettext("%(browser)s on %(system)s", browser=gettext(browser), system=system)
    return gettext(text)


def init_app(app: Flask) -> None:
    app.jinja_env.globals["device_name"] = device_name
    app.jinja_env.globals["plan_note"] = plan_note


def plan_note(text: str | None) -> str:
    """A plan version's change note in the reader's language when the system wrote it
    ("Completed" is the plan's status word); a note a clinician typed shows as typed."""
    from flask_babel import gettext, pgettext

    if not text:
        return ""
    if text == "Completed":
        return pgettext("treatment plan", "Completed")
    return gettext(text)

"""The portal's languages: which one a request reads in, the switcher, and the catalogs.

English is the source language (the msgids); Traditional Chinese and Spanish have gettext
catalogs in `portal/translations/<locale>/LC_MESSAGES/messages.po`, compiled to `.mo` when the
app starts (a clean clone has only the `.po`). The language is, in order: a signed-in
patient's profile choice, the choice this browser made with the switcher (kept in the
session, for visitors and staff), the browser's `Accept-Language`, English.
Clinical content (test names, plan text, messages) is shown as entered, in no catalog.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale, support
from babel.dates import format_date as babel_date
from babel.dates import format_skeleton, get_day_names
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    has_app_context,
    has_request_context,
    redirect,
    request,
    session,
)
from flask_babel import Babel, get_locale, get_translations
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from werkzeug.wrappers.response import Response
from wtforms.i18n import messages_path

from portal.audit.declare import audit_exempt
from portal.models import Role
from portal.services import profiles
from portal.services.profiles import LANGUAGES, LOCALES
from portal.web import doors
from portal.web.forms import run
from portal.web.identity import current_account, signed_in_actor
from portal.web.redirects import local_path

DEFAULT = "en"
SESSION_KEY = "language"
#: `pybabel extract` options besides babel.cfg (`make messages` and the catalog test pass the
#: same): the lazy keywords module-level strings use, besides the defaults (gettext, ngettext,
#: pgettext, N_, ...), and only hidden directories skipped (the default also skips
#: `templates/_macros`).
EXTRACT_OPTIONS = (
    "--ignore-dirs=.* __pycache__",
    *("-k", "lazy_gettext", "-k", "_l", "-k", "lazy_pgettext:1c,2", "-k", "_p:1c,2"),
)
TRANSLATIONS = Path(__file__).parent / "translations"

bp = Blueprint("i18n", __name__)
babel = Babel()


def tag_for(value: str | None) -> str | None:
    """The offered tag a language tag stands for, or None: `zh-TW`, `zh-HK` and plain `zh`
    read Traditional Chinese here (the only Chinese we have), `es-MX` Spanish, `en-GB` English."""
    if not value:
        return None
    parts = value.replace("_", "-").lower().split("-")
    if parts[0] == "zh":
        return "zh-Hant"
    return next((tag for tag in LANGUAGES if tag.lower() == parts[0]), None)


def current_tag() -> str:
    """The tag of the language this request reads in (for `<html lang>`)."""
    locale = str(reading())
    return next((tag for tag, name in LOCALES.items() if name == locale), DEFAULT)


def _select_locale() -> str:
    """Worked out once per request, on the first translated string; outside a request (the
    worker, the command line) English, unless the caller forces a recipient's language."""
    return LOCALES[_chosen_tag()] if has_request_context() else LOCALES[DEFAULT]


def _chosen_tag() -> str:
    if doors.speaks_json():
        return DEFAULT  # the API is read by programs: its words stay the documented English
    # The patient's own profile row came with their account (joined): no query of its own.
    account = current_account()
    if account is not None and account.patient is not None:
        own = tag_for(account.patient.preferred_language)
        if own is not None:
            return own
    chosen = tag_for(session.get(SESSION_KEY))
    if chosen is not None:
        return chosen
    for value, _quality in request.accept_languages:
        found = tag_for(value)
        if found is not None:
            return found
    return DEFAULT


@dataclass(frozen=True)
class Reader:
    """The language a request reads in, worked out once: its Babel locale, that locale's
    name (`en`, `zh_Hant`, `es`: the key of the caches below) and its catalog."""

    locale: Locale
    name: str
    catalog: support.NullTranslations


def reader() -> Reader:
    """The reader of this request (or of a `force_locale` block). The same answer as
    Flask-Babel's `get_locale` and `get_translations`, which a page asks ~150 times (every
    string, date and flag) and which walk three context proxies each time: kept here beside
    the locale Flask-Babel keeps in `g`, and made again when that locale changes."""
    try:
        state = g._flask_babel
        kept: Reader = state.portal_reader
        if kept.locale is state.babel_locale:
            return kept
    except (AttributeError, RuntimeError):  # not worked out yet, or outside an app context
        pass
    locale = get_locale() or _ENGLISH_LOCALE
    name = str(locale)
    # Each app's catalogs (its translation directories), taken from Flask-Babel once.
    catalogs = current_app.extensions.setdefault("portal.catalogs", {}) if has_app_context() else {}
    if name not in catalogs:
        catalogs[name] = get_translations()
    made = Reader(locale, name, catalogs[name])
    if has_app_context() and locale is getattr(g.get("_flask_babel"), "babel_locale", None):
        g._flask_babel.portal_reader = made
    return made


def reading() -> Locale:
    """The locale this request reads in (see `reader`)."""
    return reader().locale


_ENGLISH_LOCALE = Locale.parse(DEFAULT)


def catalog() -> support.NullTranslations:
    """The reader's translations (the templates' `_`, `ngettext` and `pgettext` read them)."""
    return reader().catalog


#: Date patterns kept for English (the portal's look since before it spoke other languages);
#: other languages use their own CLDR forms of the same skeletons.
_ENGLISH = {"yMMMd": "d MMM y", "full": "EEEE d MMMM y"}


def day_text(value: date, form: str = "yMMMd") -> str:
    """A day in the reader's language; `form` is a CLDR skeleton, or `full` (the day with its
    weekday, written out)."""
    return _day_text(reader().name, form, value)


def time_text(value: datetime) -> str:
    """The time of day as the reader's language writes it (24-hour)."""
    # Formatted from the wall-clock time: the zone was applied by `local`, and its
    # abbreviation (CET, EST) is added by the callers as the portal always showed it.
    return _time_text(reader().name, value.hour, value.minute)


def month_text(value: date) -> str:
    """A month and year (`Dec 2026`, `2026年12月`, `dic 2026`), for a chart's axis."""
    return _day_text(reader().name, "yMMM", date(value.year, value.month, 1))


# Babel matches the skeleton and parses the pattern on every call; a list page writes the same
# few days and times many times over, so each text is made once per language.
@lru_cache(maxsize=8192)
def _day_text(locale: str, form: str, value: date) -> str:
    if locale == "en":
        return babel_date(value, "MMM y" if form == "yMMM" else _ENGLISH[form], locale="en")
    if form == "full":
        return babel_date(value, "full", locale=locale)
    return format_skeleton(form, value, locale=locale)


@lru_cache(maxsize=4096)
def _time_text(locale: str, hour: int, minute: int) -> str:
    return format_skeleton("Hm", datetime(2000, 1, 1, hour, minute, tzinfo=UTC), locale=locale)


def weekday_name(index: int) -> str:
    """Monday (0) to Sunday (6), written out in the reader's language (Babel's CLDR names)."""
    return str(get_day_names("wide", locale=reading())[index])


@pass_context
def _template_gettext(context: Context, string: str, **variables: Any) -> str:
    """Jinja's newstyle `gettext`: translated, marked safe where the template escapes (so
    the variables are escaped as they go in), and formatted (`%%` reads `%`)."""
    text: str = catalog().ugettext(string)
    if context.eval_ctx.autoescape:
        text = Markup(text)  # noqa: S704  (our own catalogs, as Jinja's wrapper trusts them)
    return text % variables if variables or "%" in text else text


def compile_catalogs(directory: Path = TRANSLATIONS) -> None:
    """Compile each `.po` whose `.mo` is missing or older. Written to a temporary file and
    renamed, so two processes starting at once never read half a catalog."""
    for po in directory.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source)
        fd, temporary = tempfile.mkstemp(dir=po.parent, suffix=".mo.tmp")
        with os.fdopen(fd, "wb") as target:
            write_mo(target, catalog)
        os.replace(temporary, mo)


@bp.post("/language")
@audit_exempt  # shows nothing; a patient's change is recorded by the service
def switch_language() -> Response:
    """The switcher on every page (a plain form: it works without JavaScript). A patient's
    choice goes to their profile; anyone else's stays with this browser's session."""
    tag = tag_for(request.form.get("language")) or DEFAULT
    actor = signed_in_actor()
    if actor is not None and actor.role is Role.PATIENT:
        run(lambda s: profiles.set_language(s, actor, tag))
    session[SESSION_KEY] = tag
    return redirect(local_path(request.form.get("next")) or "/", code=303)


def init_app(app: Flask) -> None:
    compile_catalogs()
    # WTForms' own messages ("Not a valid choice."): Babel would fall back from zh_Hant to
    # WTForms' Simplified Chinese catalog; its Taiwan catalog is the Traditional one.
    traditional = support.Translations.load(messages_path(), ["zh_TW"], domain="wtforms")

    @app.before_request
    def _wtforms_language() -> None:
        if request.endpoint in (None, "static") or doors.speaks_json():
            return
        if str(reading()) == LOCALES["zh-Hant"]:
            request.wtforms_translations = traditional  # type: ignore[attr-defined]

    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    babel.init_app(app, locale_selector=_select_locale)
    # The templates' gettext callables, as Flask-Babel installs them but through `catalog`.
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: catalog().ugettext(s),
        ngettext=lambda s, p, n: catalog().ungettext(s, p, n),
        pgettext=lambda c, s: catalog().upgettext(c, s),
        npgettext=lambda c, s, p, n: catalog().unpgettext(c, s, p, n),
        newstyle=True,
    )
    # `_` itself, the templates' most called function (~50 a page): what the newstyle wrapper
    # does, without its two indirections.
    app.jinja_env.globals["_"] = app.jinja_env.globals["gettext"] = _template_gettext
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["current_language"] = current_tag
    app.register_blueprint(bp)

"""The portal's languages: the offered tags, the reader's locale and catalog, dates and times
written the reader's way, and compiling the catalogs. Which language a request reads in and
the switcher are the web's (`portal.web.language`).

English is the source language (the msgids); Traditional Chinese and Spanish have gettext
catalogs in `portal/translations/<locale>/LC_MESSAGES/messages.po`, compiled to `.mo` when the
app starts (a clean clone has only the `.po`).
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
from flask import current_app, g, has_app_context
from flask_babel import Babel, get_locale, get_translations
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

#: The languages the portal is written in, by BCP 47 tag (the stored value, `<html lang>`),
#: each named in itself: a reader looks for their language written in it. Profiles that chose
#: one the portal does not speak (fr, de, pt, offered before) read in the browser's language.
LANGUAGES = {"en": "English", "zh-Hant": "繁體中文", "es": "Español"}
#: The Babel locale (catalog directory under portal/translations) of each language.
LOCALES = {"en": "en", "zh-Hant": "zh_Hant", "es": "es"}

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
def template_gettext(context: Context, string: str, **variables: Any) -> str:
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

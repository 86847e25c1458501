"""Which language a request reads in, and the switcher on every page.

The language is, in order: a signed-in patient's profile choice, the choice this browser made
with the switcher (kept in the session, for visitors and staff), the browser's
`Accept-Language`, English. The doors for programs (the API) always read the documented
English. The locale core (tags, catalogs, dates) is `portal.i18n`.
"""

from __future__ import annotations

from babel import support
from flask import Blueprint, Flask, has_request_context, redirect, request, session
from werkzeug.wrappers.response import Response
from wtforms.i18n import messages_path

from portal.audit.declare import audit_exempt
from portal.i18n import (
    DEFAULT,
    LANGUAGES,
    LOCALES,
    SESSION_KEY,
    TRANSLATIONS,
    babel,
    catalog,
    compile_catalogs,
    current_tag,
    reading,
    tag_for,
    template_gettext,
)
from portal.models import Role
from portal.services import profiles
from portal.web import doors
from portal.web.forms import run
from portal.web.identity import current_account, signed_in_actor
from portal.web.redirects import local_path

bp = Blueprint("i18n", __name__)


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
    app.jinja_env.globals["_"] = app.jinja_env.globals["gettext"] = template_gettext
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["current_language"] = current_tag
    app.register_blueprint(bp)

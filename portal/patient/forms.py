"""Patient forms: parsing and field-level checks only; the rules live in portal.services."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, Optional

from portal.auth.forms import ChangePasswordForm, EmptyForm
from portal.i18n import LANGUAGES
from portal.models import ReleasePreference
from portal.services.messaging import MAX_BODY
from portal.web.forms import new_key

__all__ = [
    "AppointmentForm",
    "ChangePasswordForm",
    "EmptyForm",
    "NewMessageForm",
    "PreferencesForm",
    "ReplyForm",
]

ATTACH_HINT = _l("Optional.")  # the limits are added where the form is drawn (attachment_limits)


_ID = re.compile(r"[0-9]{1,18}")


def optional_int(value: object) -> int | None:
    """A select's value as an id; the empty "Choose…" option is None (so required fails).

    Only ASCII digits are an id (`int` would also take "²"-like digits, "1_0" and " 1"); anything
    else raises ValueError, which the field reports as an invalid choice (422, never a 500).
    """
    if value in ("", None):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _ID.fullmatch(value):
        return int(value)
    raise ValueError(f"not an id: {value!r}")


class ReplyForm(FlaskForm):
    body = TextAreaField(
        _l("Your message"), validators=[DataRequired(_l("Write a message.")), Length(max=MAX_BODY)]
    )
    attachment = MultipleFileField(_l("Attach files"), description=ATTACH_HINT)
    #: Generated per rendering: a double-click or a retried post sends one message.
    idempotency_key = HiddenField(default=new_key, validators=[Length(max=64)])


class NewMessageForm(ReplyForm):
    to = SelectField(
        _l("To"), coerce=optional_int, validators=[DataRequired(_l("Choose who to write to."))]
    )
    subject = StringField(
        _l("Subject"), validators=[DataRequired(_l("Enter a subject.")), Length(max=200)]
    )

    field_order = ("to", "subject", "body", "attachment")


class RescheduleForm(FlaskForm):
    # As on the booking form: `reschedule` checks the time posted against the open slots.
    start_at = SelectField(
        _l("New time"),
        validators=[DataRequired(_l("Choose a time."))],
        description=_l("Times are shown in your time zone (see your profile)."),
        validate_choice=False,
    )


class AppointmentForm(FlaskForm):
    provider_id = SelectField(
        _l("With"),
        coerce=optional_int,
        validators=[DataRequired(_l("Choose who you want to see."))],
    )
    # Not checked against the times offered: one taken since the form was shown must reach
    # `book`, which says so ("That time was just taken") and checks every start anyway.
    start_at = SelectField(
        _l("Time"),
        validators=[DataRequired(_l("Choose a time."))],
        description=_l("Times are shown in your time zone (see your profile)."),
        validate_choice=False,
    )
    reason = TextAreaField(
        _l("Reason for the visit"),
        validators=[Optional(), Length(max=500)],
        description=_l("Optional. A few words help your care team prepare."),
    )


class PreferencesForm(FlaskForm):
    contact_phone = TelField(_l("Phone"), validators=[Optional(), Length(max=40)])
    contact_email = EmailField(
        _l("Contact email"),
        validators=[Optional(), Email(_l("Enter a valid email address.")), Length(max=254)],
    )
    # "Email me when there is": the notices say only that something is new, never what.
    mail_lab_results = BooleanField(_l("A new lab result"))
    mail_messages = BooleanField(_l("A new message"))
    mail_appointments = BooleanField(_l("A change to an appointment"))
    mail_plans = BooleanField(_l("An update to my treatment plan"))
    # Empty (the first choice): the language the browser asks for, as before signing in.
    preferred_language = SelectField(
        _l("Preferred language"),
        choices=[SelectChoice("", _l("Same as my browser"))]
        # Each name in its own language, marked so (as in the footer's switcher).
        + [SelectChoice(k, v, render_kw={"lang": k}) for k, v in LANGUAGES.items()],
    )
    release_preference = RadioField(
        _l("When should new results appear here?"),
        choices=[
            SelectChoice(
                ReleasePreference.AS_SOON_AS_ALLOWED.value,
                _l("As soon as the clinic's policy allows"),
            ),
            SelectChoice(
                ReleasePreference.AFTER_REVIEW.value, _l("After my clinician has reviewed them")
            ),
        ],
        validators=[DataRequired(_l("Choose when new results should appear."))],
    )

"""Sign-in, activation, invitation and password forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

# Labels and messages are lazy: translated when a page shows them, in the reader's language.


class EmptyForm(FlaskForm):
    """A form with only its CSRF token: one-button actions such as Sign out."""


class LoginForm(FlaskForm):
    email = EmailField(
        _l("Email"), validators=[DataRequired(_l("Enter your email address.")), Length(max=254)]
    )
    password = PasswordField(
        _l("Password"), validators=[DataRequired(_l("Enter your password.")), Length(max=256)]
    )


class NewPasswordMixin:
    password = PasswordField(
        _l("New password"),
        validators=[DataRequired(_l("Enter a new password.")), Length(max=256)],
        description=_l("At least 12 characters. A short sentence is easy to remember."),
    )
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[
            DataRequired(_l("Repeat the new password.")),
            EqualTo("password", message=_l("The passwords do not match.")),
        ],
    )


#: An address someone signs in with: required, an email address, at most 254 characters.
_SIGN_IN_ADDRESS = [
    DataRequired(_l("Enter your email address.")),
    Email(_l("Enter a valid email address.")),
    Length(max=254),
]


class ActivateForm(NewPasswordMixin, FlaskForm):
    code = StringField(
        _l("Activation code"),
        validators=[DataRequired(_l("Enter the activation code.")), Length(max=40)],
        description=_l("The code the clinic gave you, for example 1A2B-3C4D-5E6F-7A8B."),
    )
    date_of_birth = DateField(_l("Date of birth"), validators=[Optional()])
    email = EmailField(_l("Email"), validators=_SIGN_IN_ADDRESS)


class InvitationForm(NewPasswordMixin, FlaskForm):
    pass


class ForgotPasswordForm(FlaskForm):
    email = EmailField(
        _l("Email"),
        validators=_SIGN_IN_ADDRESS,
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        description=_l("The address you sign in with."),
    )


class ResetPasswordForm(NewPasswordMixin, FlaskForm):
    pass


class ChangePasswordForm(NewPasswordMixin, FlaskForm):
    current_password = PasswordField(
        _l("Current password"), validators=[DataRequired(_l("Enter your current password."))]
    )


class ProviderMailForm(FlaskForm):
    mail_messages = BooleanField(_l("Email me when a patient writes to me"))


class SignInCodeForm(FlaskForm):
    code = StringField(
        _l("Code"),
        validators=[DataRequired(_l("Enter the code.")), Length(max=24)],
        description=_l(
            "The 6-digit code your authenticator app shows now, or one of your recovery codes."
        ),
        render_kw={"autocomplete": "one-time-code", "spellcheck": "false", "autocapitalize": "off"},
    )


class AppCodeForm(FlaskForm):
    code = StringField(
        _l("Code from your app"),
        validators=[DataRequired(_l("Enter the code.")), Length(max=24)],
        description=_l("The 6-digit code your authenticator app shows for the portal now."),
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"},
    )


class TurnOffForm(FlaskForm):
    code = StringField(
        _l("Code from your app, or a recovery code"),
        validators=[DataRequired(_l("Enter the code.")), Length(max=24)],
        render_kw={"autocomplete": "one-time-code", "spellcheck": "false", "autocapitalize": "off"},
    )


class TimeZoneForm(FlaskForm):
    """One's own time zone; the choices are filled from the zone database when shown."""

    time_zone = SelectField(_l("Show times in"), validate_choice=False)

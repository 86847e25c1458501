"""Sign-in, activation, invitation and password forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional


class EmptyForm(FlaskForm):
    """A form with only its CSRF token: one-button actions such as Sign out."""


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


class NewPasswordMixin:
    password = PasswordField(
        "New password",
        validators=[DataRequired(), Length(max=256)],
        description="At least 12 characters. A short sentence is easy to remember.",
    )
    confirm = PasswordField(
        "Repeat the new password",
        validators=[DataRequired(), EqualTo("password", message="The passwords do not match.")],
    )


class ActivateForm(NewPasswordMixin, FlaskForm):
    code = StringField(
        "Activation code",
        validators=[DataRequired(), Length(max=40)],
        description="The code the clinic gave you, for example 1A2B-3C4D-5E6F-7A8B.",
    )
    date_of_birth = DateField("Date of birth", validators=[Optional()])
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=254)])


class InvitationForm(NewPasswordMixin, FlaskForm):
    pass


class ForgotPasswordForm(FlaskForm):
    email = EmailField(
        "Email",
        validators=[DataRequired(), Email("Enter a valid email address."), Length(max=254)],
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        description="The address you sign in with.",
    )


class ResetPasswordForm(NewPasswordMixin, FlaskForm):
    pass


class ChangePasswordForm(NewPasswordMixin, FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired()])


class ProviderMailForm(FlaskForm):
    mail_messages = BooleanField("Email me when a patient writes to me")


class SignInCodeForm(FlaskForm):
    code = StringField(
        "Code",
        validators=[DataRequired("Enter the code."), Length(max=24)],
        description="The 6-digit code your authenticator app shows now, or one of your "
        "recovery codes.",
        render_kw={"autocomplete": "one-time-code", "spellcheck": "false", "autocapitalize": "off"},
    )


class AppCodeForm(FlaskForm):
    code = StringField(
        "Code from your app",
        validators=[DataRequired("Enter the code."), Length(max=24)],
        description="The 6-digit code your authenticator app shows for the portal now.",
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"},
    )


class TurnOffForm(FlaskForm):
    code = StringField(
        "Code from your app, or a recovery code",
        validators=[DataRequired("Enter the code."), Length(max=24)],
        render_kw={"autocomplete": "one-time-code", "spellcheck": "false", "autocapitalize": "off"},
    )


class TimeZoneForm(FlaskForm):
    """One's own time zone; the choices are filled from the zone database when shown."""

    time_zone = SelectField("Show times in", validate_choice=False)

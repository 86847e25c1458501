"""Administration forms. Validation of shape only; rules live in portal.services."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, EmailField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional

from portal.models import ReleaseMode


class NewStaffForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=254)])
    display_name = StringField(
        "Name shown in the portal", validators=[DataRequired(), Length(max=200)]
    )
    role = SelectField(
        "Role",
        choices=[SelectChoice("provider", "Provider"), SelectChoice("admin", "Administrator")],
        default="provider",
    )
    specialty = StringField("Specialty (providers)", validators=[Optional(), Length(max=120)])
    clinic = StringField("Clinic (providers)", validators=[Optional(), Length(max=200)])


class NewPatientForm(FlaskForm):
    medical_record_number = StringField(
        "Medical record number (MRN)", validators=[DataRequired(), Length(max=32)]
    )
    display_name = StringField("Full name", validators=[DataRequired(), Length(max=200)])
    date_of_birth = DateField(
        "Date of birth",
        validators=[Optional()],
        description="The patient confirms it when they activate their account.",
    )
    primary_clinic = StringField("Clinic", validators=[Optional(), Length(max=200)])
    contact_email = EmailField("Contact email", validators=[Optional(), Email(), Length(max=254)])


class AssignForm(FlaskForm):
    provider_id = SelectField("Provider", coerce=int, validators=[DataRequired()])


class RetentionForm(FlaskForm):
    retention_days = IntegerField(
        "Keep messages for (days)",
        validators=[Optional(), NumberRange(min=1)],
        description="Leave empty to keep messages for good.",
    )


class PolicyForm(FlaskForm):
    category = SelectField("Test category")
    mode = SelectField(
        "When results reach the patient",
        choices=[
            SelectChoice(ReleaseMode.ON_PUBLISH.value, "As soon as they are published"),
            SelectChoice(ReleaseMode.HOLD_FOR_REVIEW.value, "Held until a provider reviews them"),
            SelectChoice(ReleaseMode.AUTO_AFTER_DELAY.value, "Automatically after a delay"),
        ],
    )
    delay_hours = IntegerField("Delay (hours)", validators=[Optional()])
    never_auto_release = BooleanField("Sensitive: never release automatically")


class EditUserForm(FlaskForm):
    email = EmailField(
        "Email (signs in with it)", validators=[DataRequired(), Email(), Length(max=254)]
    )
    display_name = StringField("Name shown in the portal", validators=[Optional(), Length(max=200)])
    specialty = StringField("Specialty", validators=[Optional(), Length(max=120)])
    clinic = StringField("Clinic", validators=[Optional(), Length(max=200)])


class EditPatientForm(FlaskForm):
    medical_record_number = StringField(
        "Medical record number (MRN)", validators=[DataRequired(), Length(max=32)]
    )
    display_name = StringField("Full name", validators=[DataRequired(), Length(max=200)])
    date_of_birth = DateField("Date of birth", validators=[Optional()])
    primary_clinic = StringField("Clinic", validators=[Optional(), Length(max=200)])
    contact_email = EmailField(
        "Contact email",
        validators=[Optional(), Email(), Length(max=254)],
        description="Activation codes and notices go here.",
    )
    contact_phone = StringField("Contact phone", validators=[Optional(), Length(max=40)])

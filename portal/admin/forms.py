"""Administration forms. Validation of shape only; rules live in portal.services."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, EmailField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional

from portal.models import ReleaseMode


class NewStaffForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=254)])
    display_name = StringField(
        _l("Name shown in the portal"), validators=[DataRequired(), Length(max=200)]
    )
    role = SelectField(
        _l("Role"),
        choices=[
            SelectChoice("provider", _l("Provider")),
            SelectChoice("admin", _l("Administrator")),
        ],
        default="provider",
    )
    specialty = StringField(_l("Specialty (providers)"), validators=[Optional(), Length(max=120)])
    clinic = StringField(_l("Clinic (providers)"), validators=[Optional(), Length(max=200)])


class NewPatientForm(FlaskForm):
    medical_record_number = StringField(
        _l("Medical record number (MRN)"), validators=[DataRequired(), Length(max=32)]
    )
    display_name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=200)])
    date_of_birth = DateField(
        _l("Date of birth"),
        validators=[Optional()],
        description=_l("The patient confirms it when they activate their account."),
    )
    primary_clinic = StringField(_l("Clinic"), validators=[Optional(), Length(max=200)])
    contact_email = EmailField(
        _l("Contact email"), validators=[Optional(), Email(), Length(max=254)]
    )


class AssignForm(FlaskForm):
    provider_id = SelectField(_l("Provider"), coerce=int, validators=[DataRequired()])


class RetentionForm(FlaskForm):
    retention_days = IntegerField(
        _l("Keep messages for (days)"),
        validators=[Optional(), NumberRange(min=1)],
        description=_l("Leave empty to keep messages for good."),
    )


class PolicyForm(FlaskForm):
    category = SelectField(_l("Test category"))
    mode = SelectField(
        _l("When results reach the patient"),
        choices=[
            SelectChoice(ReleaseMode.ON_PUBLISH.value, _l("As soon as they are published")),
            SelectChoice(
                ReleaseMode.HOLD_FOR_REVIEW.value, _l("Held until a provider reviews them")
            ),
            SelectChoice(ReleaseMode.AUTO_AFTER_DELAY.value, _l("Automatically after a delay")),
        ],
    )
    delay_hours = IntegerField(_l("Delay (hours)"), validators=[Optional()])
    never_auto_release = BooleanField(_l("Sensitive: never release automatically"))


class CategoryRulesForm(FlaskForm):
    apply = BooleanField(_l("Apply the category rules (clinics outside the United States)"))


class EditUserForm(FlaskForm):
    email = EmailField(
        _l("Email (signs in with it)"), validators=[DataRequired(), Email(), Length(max=254)]
    )
    display_name = StringField(
        _l("Name shown in the portal"), validators=[Optional(), Length(max=200)]
    )
    specialty = StringField(_l("Specialty"), validators=[Optional(), Length(max=120)])
    clinic = StringField(_l("Clinic"), validators=[Optional(), Length(max=200)])


class EditPatientForm(FlaskForm):
    medical_record_number = StringField(
        _l("Medical record number (MRN)"), validators=[DataRequired(), Length(max=32)]
    )
    display_name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=200)])
    date_of_birth = DateField(_l("Date of birth"), validators=[Optional()])
    primary_clinic = StringField(_l("Clinic"), validators=[Optional(), Length(max=200)])
    contact_email = EmailField(
        _l("Contact email"),
        validators=[Optional(), Email(), Length(max=254)],
        description=_l("Activation codes and notices go here."),
    )
    contact_phone = StringField(_l("Contact phone"), validators=[Optional(), Length(max=40)])

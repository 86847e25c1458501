"""Provider forms. Validation of shape only; rules live in portal.services."""

from __future__ import annotations

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from portal.i18n import weekday_name
from portal.models import BookingMode, ResultStatus, Visibility
from portal.services.catalog import CATALOG
from portal.services.schedule import WEEKDAYS
from portal.web.forms import new_key

TEST_CHOICES = [SelectChoice("", _l("Choose a test"))] + [
    SelectChoice(t.loinc, f"{t.name} (LOINC {t.loinc})")
    for t in sorted(CATALOG, key=lambda t: t.name)
]
VISIBILITY_CHOICES = [
    SelectChoice(
        Visibility.SHARED.value, _l("Shared with the patient (following the release policy)")
    ),
    SelectChoice(Visibility.PROVIDER_ONLY.value, _l("Care team only")),
]


class ChooseTestForm(FlaskForm):
    """The first, GET step: which test; the second step comes prefilled from the catalog."""

    class Meta:
        csrf = False

    test_code = SelectField(_l("Test"), choices=TEST_CHOICES, validators=[Optional()])


class ResultForm(FlaskForm):
    test_code = StringField(_l("Test code (LOINC)"), validators=[DataRequired(), Length(max=32)])
    test_name = StringField(_l("Test name"), validators=[DataRequired(), Length(max=200)])
    result_value = StringField(_l("Value"), validators=[DataRequired(), Length(max=200)])
    units = StringField(
        _l("Units"),
        validators=[Optional(), Length(max=40)],
        description=_l("Left empty, the test's usual units are used."),
    )
    reference_range = StringField(
        _l("Reference range"),
        validators=[Optional(), Length(max=80)],
        description=_l("For example 3.5-5.1, <200 or >40. Left empty, the test's usual range."),
    )
    visibility = RadioField(
        _l("Who sees it"), choices=VISIBILITY_CHOICES, default=Visibility.SHARED.value
    )
    collected_at = DateTimeLocalField(
        _l("Sample taken"),
        format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
        description=_l("In your own time zone. Left empty: now, less the test's usual turnaround."),
    )
    report = FileField(_l("Report (PDF, PNG or JPEG, optional)"))


CORRECTION_STATUSES = [
    SelectChoice(ResultStatus.CORRECTED.value, _l("Corrected (the value was wrong)")),
    SelectChoice(ResultStatus.AMENDED.value, _l("Amended (information added)")),
    SelectChoice(ResultStatus.FINAL.value, _l("Final")),
    SelectChoice(ResultStatus.CANCELLED.value, _l("Cancelled")),
    SelectChoice(ResultStatus.PRELIMINARY.value, _l("Still preliminary")),
]


class CorrectionForm(FlaskForm):
    result_value = StringField(_l("Value"), validators=[DataRequired(), Length(max=200)])
    units = StringField(_l("Units"), validators=[Optional(), Length(max=40)])
    reference_range = StringField(_l("Reference range"), validators=[Optional(), Length(max=80)])
    status = SelectField(_l("Status of the new version"), choices=CORRECTION_STATUSES)
    visibility = RadioField(_l("Who sees it"), choices=VISIBILITY_CHOICES)
    reason = TextAreaField(
        _l("Reason for the change"),
        validators=[Optional(), Length(max=2000)],
        description=_l("Required once a result is published; the patient sees it with the result."),
    )
    report = FileField(_l("Report (PDF, PNG or JPEG, optional)"))


class PlanForm(FlaskForm):
    summary = StringField(_l("Summary"), validators=[DataRequired(), Length(max=300)])
    details = TextAreaField(_l("Details"), validators=[Optional(), Length(max=20000)])
    start_date = DateField(_l("Start date"), validators=[Optional()])
    end_date = DateField(_l("End date"), validators=[Optional()])
    note = StringField(_l("What changed (optional)"), validators=[Optional(), Length(max=500)])


class ActivatePlanForm(FlaskForm):
    complete_others = BooleanField(_l("Complete the patient's other active plans"), default=True)


class ReplyForm(FlaskForm):
    body = TextAreaField(_l("Reply"), validators=[DataRequired(), Length(max=20000)])
    attachment = FileField(_l("Attachment (PDF, PNG or JPEG, optional)"))


class NewThreadForm(FlaskForm):
    subject = StringField(_l("Subject"), validators=[DataRequired(), Length(max=200)])
    body = TextAreaField(_l("Message"), validators=[DataRequired(), Length(max=20000)])
    attachment = FileField(_l("Attachment (PDF, PNG or JPEG, optional)"))
    #: Generated per rendering: a double click opens one thread (as on the patient's side).
    idempotency_key = HiddenField(default=new_key, validators=[Length(max=64)])


class CancelForm(FlaskForm):
    reason = StringField(_l("Reason for cancelling"), validators=[DataRequired(), Length(max=500)])


class DeclineForm(FlaskForm):
    reason = StringField(
        _l("Reason the patient will read"), validators=[DataRequired(), Length(max=500)]
    )


class ProposeForm(FlaskForm):
    # The choices are the provider's open times; the service checks the one posted again.
    start_at = SelectField(_l("Another time"), validate_choice=False)


class BookingModeForm(FlaskForm):
    booking_mode = RadioField(
        _l("Patients with this schedule"),
        choices=[
            SelectChoice(BookingMode.DIRECT.value, _l("Book free times directly")),
            SelectChoice(
                BookingMode.REQUEST.value, _l("Request a time; I confirm, move or decline")
            ),
            SelectChoice(BookingMode.VIEW.value, _l("See free times only and call the clinic")),
        ],
    )


class RuleForm(FlaskForm):
    weekday = SelectField(
        _l("Day"),
        choices=[SelectChoice(str(i), LazyString(weekday_name, i)) for i in range(len(WEEKDAYS))],
        default="0",
    )
    start = TimeField(_l("From (clinic time)"), validators=[DataRequired()])
    end = TimeField(_l("Until (clinic time)"), validators=[DataRequired()])
    slot_minutes = SelectField(
        _l("Visit length"),
        choices=[
            SelectChoice("15", _l("15 minutes")),
            SelectChoice("30", _l("30 minutes")),
            SelectChoice("60", _l("1 hour")),
        ],
        default="30",
    )
    location = StringField(_l("Location"), validators=[Optional(), Length(max=200)])


class ExceptionForm(FlaskForm):
    day = DateField(_l("Day"), validators=[DataRequired()])
    reason = StringField(_l("Reason (optional)"), validators=[Optional(), Length(max=200)])

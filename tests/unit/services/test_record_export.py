"""Writing a result as FHIR, without a database: LOINC codes told from the clinic's own,
numbers as UCUM quantities (with a comparator), words as strings, flags as HL7 codes."""

from __future__ import annotations

import pytest

from portal.models import Flag, LabResultVersion, PatientProfile, ResultStatus
from portal.services import record_export


@pytest.mark.parametrize(
    ("code", "loinc"),
    [("2823-3", True), ("4548-4", True), ("21636-6", True), ("2823-4", False), ("K-1", False)],
)
def test_only_codes_with_a_right_check_digit_are_sent_as_loinc(code: str, loinc: bool) -> None:
    assert record_export.is_loinc(code) is loinc


def _version(value: str, units: str | None = "mmol/L") -> LabResultVersion:
    return LabResultVersion(
        version=1,
        result_value=value,
        units=units,
        reference_range="3.5-5.1",
        flag=Flag.NORMAL,
        status=ResultStatus.FINAL,
    )


@pytest.mark.parametrize(
    ("value", "units", "expected"),
    [
        (
            "4.2",
            "mmol/L",
            {
                "valueQuantity": {
                    "value": 4.2,
                    "unit": "mmol/L",
                    "system": record_export.UCUM,
                    "code": "mmol/L",
                }
            },
        ),
        (
            "<5",
            "m[IU]/L",
            {
                "valueQuantity": {
                    "value": 5,
                    "comparator": "<",
                    "unit": "mIU/L",
                    "system": record_export.UCUM,
                    "code": "m[IU]/L",
                }
            },
        ),
        ("104", None, {"valueQuantity": {"value": 104}}),
        ("No pathogenic variant detected", None, {"valueString": "No pathogenic variant detected"}),
    ],
)
def test_a_value_is_a_ucum_quantity_when_it_is_a_number(
    value: str, units: str | None, expected: dict[str, object]
) -> None:
    assert record_export._value(_version(value, units)) == expected


def test_every_flag_but_unknown_has_an_interpretation_code() -> None:
    assert set(record_export.INTERPRETATIONS) == set(Flag) - {Flag.UNKNOWN}


@pytest.mark.parametrize("tag", [None, "zh-Hant"])
def test_the_patients_language_is_sent_only_when_they_chose_one(tag: str | None) -> None:
    # None: "the same as my browser", which is no language to tell another system about.
    patient = PatientProfile(id=1, medical_record_number="MRN-1", display_name="A", is_active=True)
    patient.preferred_language = tag
    resource = record_export._patient(record_export._Ids("https://p.test"), patient)
    sent = [c["language"]["coding"][0]["code"] for c in resource.get("communication", [])]
    assert sent == ([tag] if tag else [])

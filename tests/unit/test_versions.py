"""Versions are written once: corrections add versions, nothing rewrites what a patient saw."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.access import RoleScope, reader
from portal.models import LabResult, LabResultVersion, ResultStatus
from portal.models.owned import ImmutableRowError
from portal.services import labs


def _potassium(session, people) -> LabResult:
    chen = people.actor("dr_chen")
    stmt = select(LabResult).where(
        LabResult.test_code == "2823-3", LabResult.patient_id == people.user("alice").patient.id
    )
    result = session.scalar(RoleScope(chen.role).scope(stmt, LabResult), reader(chen))
    assert result is not None
    return result


def test_a_version_cannot_be_edited_in_place(session, people) -> None:
    result = _potassium(session, people)
    chen = people.actor("dr_chen")
    version = session.scalar(
        RoleScope(chen.role)
        .scope(
            select(LabResultVersion).where(LabResultVersion.lab_result_id == result.id),
            LabResultVersion,
        )
        .limit(1),
        reader(chen),
    )
    version.result_value = "9.9"
    with pytest.raises(ImmutableRowError):
        session.flush()
    session.rollback()


def test_a_correction_keeps_every_earlier_version_readable(session, people) -> None:
    result = _potassium(session, people)
    alice = people.actor("alice")
    before = labs.versions_of(session, alice, result)
    labs.add_version(
        session,
        people.actor("dr_chen"),
        result.id,
        labs.ResultInput("4.4", "mmol/L", "3.5-5.1", ResultStatus.AMENDED),
        reason="Units confirmed with the laboratory.",
    )
    after = labs.versions_of(session, alice, result)
    assert [v.version for v in after] == [len(before) + 1, *[v.version for v in before]]
    assert after[0].change_reason == "Units confirmed with the laboratory."
    assert [v.result_value for v in after[1:]] == [v.result_value for v in before]


def test_a_correction_needs_a_reason(session, people) -> None:
    result = _potassium(session, people)
    with pytest.raises(labs.LabInputError) as error:
        labs.add_version(
            session,
            people.actor("dr_chen"),
            result.id,
            labs.ResultInput("4.4", "mmol/L", "3.5-5.1", ResultStatus.CORRECTED),
            reason="  ",
        )
    assert error.value.field == "reason"


@pytest.mark.parametrize(
    ("value", "range_", "flag"),
    [
        ("4.2", "3.5-5.1", "normal"),
        ("3.1", "3.5-5.1", "low"),
        ("5.6", "3.5-5.1", "high"),
        ("240", "<200", "high"),
        ("35", ">40", "low"),
        ("positive", "negative", "unknown"),
    ],
)
def test_flags_follow_the_reference_range(value: str, range_: str, flag: str) -> None:
    low, high = labs.parse_range(range_)
    assert labs.compute_flag(labs.parse_value(value), low, high) == flag


def test_critical_limits_override_high_and_low() -> None:
    assert labs.compute_flag(6.9, 3.5, 5.1, 2.5, 6.5) == "critical_high"
    assert labs.compute_flag(2.0, 3.5, 5.1, 2.5, 6.5) == "critical_low"

"""Lab result rules in `portal.services.labs`, whatever door (page, API) calls them."""

from __future__ import annotations

import pytest
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from portal.access import RoleScope, reader, unscoped
from portal.demo import MINIMAL_PDF
from portal.models import (
    Attachment,
    Flag,
    LabResult,
    LabResultVersion,
    ReleaseMode,
    ResultStatus,
    Visibility,
)
from portal.services import attachments, labs, settings
from portal.services.labs import LabInputError, ReleaseState
from tests.unit.services.conftest import World


def _count(session: Session, model: type) -> int:
    stmt = select(func.count()).select_from(model)
    return session.scalar(unscoped(stmt, "test count")) or 0


def _hemoglobin(
    world: World,
    *,
    test_code: str = "718-7",
    units: str | None = None,
    reference_range: str | None = None,
    report: attachments.Upload | None = None,
) -> LabResult:
    """Dr Chen publishes 19.0 for alice, as the page or the API would."""
    return labs.create_result(
        world.session,
        world.actor("dr_chen"),
        world.patient_id,
        test_code=test_code,
        test_name="Hemoglobin",
        data=labs.ResultInput("19.0", units, reference_range, ResultStatus.FINAL),
        report=report,
    )


# --- create_result: catalog defaults and the report, in one call --------------------------------


def test_blank_units_and_range_take_the_catalogs_and_the_report_is_stored_in_the_same_call(
    session: Session, world: World
) -> None:
    # Arrange
    chen = world.actor("dr_chen")
    # Act
    result = _hemoglobin(
        world, units="", reference_range=" ", report=attachments.Upload("hb.pdf", MINIMAL_PDF)
    )
    # Assert
    [version] = labs.versions_of(session, chen, result)
    assert (version.units, version.reference_range) == ("g/dL", "12.0-17.5")
    assert (version.reference_low, version.reference_high) == (12.0, 17.5)
    assert version.flag is Flag.HIGH  # flagged against the catalog's range
    files = labs.attachments_of(session, chen, [version.id])
    assert [(f.filename, attachments.decrypt(f)) for f in files[version.id]] == [
        ("hb.pdf", MINIMAL_PDF)
    ]


def test_units_and_range_given_are_kept_and_unknown_tests_get_no_defaults(
    session: Session, world: World
) -> None:
    chen = world.actor("dr_chen")
    given = _hemoglobin(world, units="g/L", reference_range="120-175")
    unknown = _hemoglobin(world, test_code="99999-9")
    [kept] = labs.versions_of(session, chen, given)
    [bare] = labs.versions_of(session, chen, unknown)
    assert (kept.units, kept.reference_range) == ("g/L", "120-175")
    assert (bare.units, bare.reference_range) == (None, None)


def test_a_report_that_cannot_be_attached_is_refused_on_report_before_anything_is_written(
    session: Session, world: World
) -> None:
    # Arrange
    before = (_count(session, LabResult), _count(session, Attachment))
    # Act
    with pytest.raises(LabInputError) as refused:
        _hemoglobin(world, report=attachments.Upload("notes.txt", b"plain text"))
    # Assert
    assert refused.value.field == "report"
    assert "PDF, PNG and JPEG" in refused.value.message
    assert (_count(session, LabResult), _count(session, Attachment)) == before


def test_a_correction_stores_its_report_on_the_new_version(session: Session, world: World) -> None:
    chen = world.actor("dr_chen")
    result = _hemoglobin(world)
    version = labs.add_version(
        session,
        chen,
        result.id,
        labs.ResultInput("15.0", "g/dL", "12.0-17.5", ResultStatus.CORRECTED),
        reason="Transcription error.",
        report=attachments.Upload("hb-2.pdf", MINIMAL_PDF),
    )
    files = labs.attachments_of(session, chen, [version.id])
    assert [f.filename for f in files[version.id]] == ["hb-2.pdf"]


# --- release state: one function, and the SQL that agrees with it --------------------------------


def test_release_state_and_its_sql_predicates_agree_on_every_demo_version(
    session: Session, world: World
) -> None:
    # Arrange: the demo has no delayed release; add one so that every state is present.
    settings.set_release_policy(
        session,
        world.actor("admin"),
        category="hematology",
        mode=ReleaseMode.AUTO_AFTER_DELAY,
        delay_hours=24,
        never_auto_release=False,
    )
    _hemoglobin(world)
    versions = session.scalars(unscoped(select(LabResultVersion), "test: every version")).all()
    states = {v.id: labs.release_state(v) for v in versions}

    def ids_where(predicate: ColumnElement[bool]) -> set[int]:
        stmt = select(LabResultVersion.id).where(predicate)
        return set(session.scalars(unscoped(stmt, "test: predicate")))

    # Act
    released = ids_where(labs.released_to_patient())
    awaiting = ids_where(labs.awaiting_release())
    # Assert
    assert set(states.values()) == set(ReleaseState)
    assert released == {i for i, s in states.items() if s is ReleaseState.RELEASED}
    assert awaiting == {i for i, s in states.items() if s.awaiting_release}
    # What a patient's own scope lets them read is exactly what the function calls released.
    alice = world.actor("alice")
    own = RoleScope(alice.role).scope(select(LabResultVersion), LabResultVersion)
    theirs = {v.id for v in session.scalars(own, reader(alice))}
    mine = {v.id for v in versions if v.patient_id == world.patient_id}
    assert theirs == {i for i in mine if states[i] is ReleaseState.RELEASED}


def test_release_state_wording() -> None:
    version = LabResultVersion(
        status=ResultStatus.FINAL, visibility=Visibility.PROVIDER_ONLY, released_at=None
    )
    assert labs.release_state(version).wording == "No: care team only"
    version = LabResultVersion(status=ResultStatus.PRELIMINARY, visibility=Visibility.SHARED)
    assert labs.release_state(version).wording == "No: preliminary"

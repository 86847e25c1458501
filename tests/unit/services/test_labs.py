"""Lab result rules in `portal.services.labs`, whatever door (page, API) calls them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from portal.access import RoleScope, get_or_404, reader, unscoped
from portal.db import utcnow
from portal.demo import MINIMAL_PDF
from portal.models import (
    Attachment,
    Flag,
    LabResult,
    LabResultVersion,
    PatientProfile,
    ReleaseMode,
    ReleasePolicy,
    ReleasePreference,
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


@pytest.mark.usefixtures("category_rules")
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


# --- release policy: a sensitive category is never released without review ----------------------


def _policy(
    world: World, category: str, mode: ReleaseMode, *, never: bool, hours: int | None
) -> None:
    settings.set_release_policy(
        world.session,
        world.actor("admin"),
        category=category,
        mode=mode,
        delay_hours=hours,
        never_auto_release=never,
    )


def _publish(world: World, test_code: str, name: str, value: str) -> LabResultVersion:
    result = labs.create_result(
        world.session,
        world.actor("dr_chen"),
        world.patient_id,
        test_code=test_code,
        test_name=name,
        data=labs.ResultInput(value, None, None, ResultStatus.FINAL),
    )
    [version] = labs.versions_of(world.session, world.actor("dr_chen"), result)
    return version


@pytest.mark.usefixtures("category_rules")
@pytest.mark.parametrize("mode", list(ReleaseMode))
def test_a_sensitive_category_is_held_for_review_whatever_its_mode(
    world: World, mode: ReleaseMode
) -> None:
    # The reproduction: "on publishing" + "never release automatically" released at once.
    hours = 2 if mode is ReleaseMode.AUTO_AFTER_DELAY else None
    _policy(world, "genetic", mode, never=True, hours=hours)
    version = _publish(world, "21636-6", "BRCA1 gene mutations", "Pathogenic variant detected")
    assert labs.release_state(version) is ReleaseState.HELD
    assert (version.released_at, version.release_due_at) == (None, None)
    assert labs.release_due(world.session, utcnow() + timedelta(days=365)) == 0


def _wbc_due_in_two_hours(world: World) -> LabResultVersion:
    _policy(world, "hematology", ReleaseMode.AUTO_AFTER_DELAY, never=False, hours=2)
    version = _publish(world, "6690-2", "White blood cells", "7.1")
    assert labs.release_state(version) is ReleaseState.SCHEDULED
    return version


@pytest.mark.usefixtures("category_rules")
def test_the_timer_releases_a_scheduled_result_when_its_policy_still_allows_it(
    world: World,
) -> None:
    version = _wbc_due_in_two_hours(world)
    assert labs.release_due(world.session, utcnow() + timedelta(hours=3)) >= 1
    assert labs.release_state(version) is ReleaseState.RELEASED


@pytest.mark.usefixtures("category_rules")
@pytest.mark.parametrize(
    ("mode", "never"),
    [
        (ReleaseMode.HOLD_FOR_REVIEW, True),  # the reproduction
        (ReleaseMode.HOLD_FOR_REVIEW, False),
        (ReleaseMode.AUTO_AFTER_DELAY, True),
    ],
)
def test_the_timer_rereads_the_policy_and_leaves_a_result_its_category_now_holds(
    world: World, mode: ReleaseMode, never: bool
) -> None:
    version = _wbc_due_in_two_hours(world)
    _policy(world, "hematology", mode, never=never, hours=2 if never else None)
    labs.release_due(world.session, utcnow() + timedelta(hours=3))
    assert version.released_at is None
    assert labs.held_version(world.session, world.actor("dr_chen"), _result_of(world, version))


@pytest.mark.usefixtures("category_rules")
def test_the_timer_rereads_the_patients_preference_for_review_first(world: World) -> None:
    version = _wbc_due_in_two_hours(world)
    patient = get_or_404(world.session, PatientProfile, world.patient_id, world.actor("alice"))
    patient.release_preference = ReleasePreference.AFTER_REVIEW
    world.session.flush()
    labs.release_due(world.session, utcnow() + timedelta(hours=3))
    assert version.released_at is None


@pytest.mark.usefixtures("category_rules")
def test_the_timer_keeps_to_a_longer_delay_set_after_publishing(world: World) -> None:
    version = _wbc_due_in_two_hours(world)
    _policy(world, "hematology", ReleaseMode.AUTO_AFTER_DELAY, never=False, hours=48)
    labs.release_due(world.session, utcnow() + timedelta(hours=3))
    assert version.released_at is None
    labs.release_due(world.session, utcnow() + timedelta(hours=49))
    assert version.released_at is not None


@pytest.mark.usefixtures("category_rules")
def test_a_policy_change_clears_or_moves_the_timers_of_held_results(world: World) -> None:
    # What staff read ("released automatically on ...") follows the policy as it is now.
    version = _wbc_due_in_two_hours(world)
    published = version.published_at
    assert published is not None
    _policy(world, "hematology", ReleaseMode.HOLD_FOR_REVIEW, never=True, hours=None)
    assert version.release_due_at is None
    assert labs.release_state(version) is ReleaseState.HELD
    _policy(world, "hematology", ReleaseMode.AUTO_AFTER_DELAY, never=False, hours=48)
    assert version.release_due_at == published + timedelta(hours=48)
    assert labs.release_state(version) is ReleaseState.SCHEDULED


def _result_of(world: World, version: LabResultVersion) -> LabResult:
    return get_or_404(world.session, LabResult, version.lab_result_id, world.actor("dr_chen"))


def test_the_words_for_a_sensitive_on_publish_policy_say_it_is_held() -> None:
    policy = ReleasePolicy(category="genetic", mode=ReleaseMode.ON_PUBLISH, never_auto_release=True)
    assert labs.describe_policy(policy).startswith("Held until a provider has reviewed it")


# --- numbers: finite and of sane magnitude when entered ----------------------------------------

TOO_LARGE = "Enter a number between -1,000,000,000,000,000 and 1,000,000,000,000,000."


@pytest.mark.parametrize(
    ("value", "reference_range", "field"),
    [
        pytest.param("9" * 400, None, "result_value", id="400-digits-parse-to-infinity"),
        pytest.param("36893488147419103232", None, "result_value", id="near-2**65"),
        pytest.param("-1" + "0" * 16, None, "result_value", id="negative"),
        pytest.param("> 1" + "0" * 20, None, "result_value", id="with-a-comparator"),
        pytest.param("4.0", "0-" + "9" * 400, "reference_range", id="range-to-infinity"),
        pytest.param("4.0", "<" + "9" * 30, "reference_range", id="upper-bound"),
        # Scientific notation is read as the number it writes (issue 25): this one is infinite.
        pytest.param("1e400", None, "result_value", id="scientific-to-infinity"),
        pytest.param("4.0", "1e2-1e20", "reference_range", id="scientific-range"),
    ],
)
def test_a_number_too_large_to_be_a_result_is_refused_before_anything_is_written(
    world: World, value: str, reference_range: str | None, field: str
) -> None:
    before = _count(world.session, LabResult)
    with pytest.raises(LabInputError) as refused:
        labs.create_result(
            world.session,
            world.actor("dr_chen"),
            world.patient_id,
            test_code="2345-7",
            test_name="Glucose",
            data=labs.ResultInput(value, "mg/dL", reference_range, ResultStatus.FINAL),
        )
    assert (refused.value.field, refused.value.message) == (field, TOO_LARGE)
    assert _count(world.session, LabResult) == before


def test_a_correction_to_a_number_too_large_is_refused(world: World) -> None:
    with pytest.raises(LabInputError) as refused:
        labs.add_version(
            world.session,
            world.actor("dr_chen"),
            world.published_result_id,
            labs.ResultInput("1" * 400, None, None, ResultStatus.CORRECTED, None),
            reason="Transcription error",
        )
    assert refused.value.field == "result_value"


@pytest.mark.parametrize("value", ["999999999999999", "-0.000000000001", "1e14", "Positive"])
def test_large_small_and_non_numeric_values_within_bounds_are_kept(
    world: World, value: str
) -> None:
    result = labs.create_result(
        world.session,
        world.actor("dr_chen"),
        world.patient_id,
        test_code="2345-7",
        test_name="Glucose",
        data=labs.ResultInput(value, "mg/dL", None, ResultStatus.FINAL),
    )
    [version] = labs.versions_of(world.session, world.actor("dr_chen"), result)
    assert version.result_value == value  # kept as written, "1e14" too (read as a number)

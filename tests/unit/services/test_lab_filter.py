"""The patient's result list filter and page cursor, as `portal.services.labs` reads them for
every door (the page and the JSON API)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from werkzeug.exceptions import NotFound

from portal.models import LabResultVersion, ResultStatus, Visibility
from portal.services import labs, paging
from tests.unit.services.conftest import World


def test_a_range_whose_end_is_before_its_start_is_refused_on_the_end() -> None:
    filters, errors = labs.parse_filter("2345-7", "2026-03-10", "2026-03-09")

    assert errors == {"to": "The end date must be on or after the start date."}
    # Refused dates are not applied; the test still is.
    assert filters == labs.LabFilter(test_code="2345-7")


@pytest.mark.parametrize(
    ("date_from", "date_to"),
    [("2026-03-10", "2026-03-10"), ("2026-03-10", "2026-03-11"), ("", "2026-03-11"), ("", "")],
)
def test_an_end_on_or_after_the_start_or_an_open_end_is_accepted(
    date_from: str, date_to: str
) -> None:
    filters, errors = labs.parse_filter(" 2345-7 ", date_from, date_to)

    assert errors == {}
    assert filters.test_code == "2345-7"
    assert filters.date_from == (date.fromisoformat(date_from) if date_from else None)
    assert filters.date_to == (date.fromisoformat(date_to) if date_to else None)


@pytest.mark.parametrize(
    "raw",
    ["31/01/2026", "2026-02-30", "２０２６-01-31", "2026-W05-1", "20260131", "9999-12-31"],
)
def test_a_date_that_cannot_be_used_is_refused_on_its_own_field(raw: str) -> None:
    filters, errors = labs.parse_filter(None, raw, None)

    assert set(errors) == {"from"}
    assert filters == labs.LabFilter()


@pytest.mark.parametrize(
    "cursor",
    [
        "nonsense",
        "1.²",
        "99999999999999999999.1",
        "1.99999999999999999999",
        "-1.5",
        "1_0.5",
        paging.encode("lab_results", (1, 2, 3)),  # one key too many
        paging.encode("patients", ("Alice", 1)),  # another list's cursor
        paging.encode("lab_results", ({"x": 1}, 2)),
    ],
)
def test_a_cursor_the_list_did_not_make_is_refused(world: World, cursor: str) -> None:
    with pytest.raises(paging.InvalidCursor) as refused:
        labs.latest_page(world.session, world.actor("alice"), labs.LabFilter(), cursor=cursor)

    assert refused.value.field == "cursor"


def _shown(page: paging.Page[labs.LabRow]) -> list[tuple[object, ...]]:
    """What the page shows of each result, in `LAB_ROW_COLUMNS` order, read off ORM objects."""
    return [
        tuple(
            getattr(row.version if column.class_ is LabResultVersion else row.result, column.key)
            for column in labs.LAB_ROW_COLUMNS
        )
        for row in page.rows
    ]


@pytest.mark.parametrize("name", ["alice", "bob", "dr_chen", "dr_okafor"])
@pytest.mark.parametrize(
    "filters",
    [
        labs.LabFilter(),
        labs.LabFilter(test_code="2823-3"),
        labs.LabFilter(status=ResultStatus.FINAL),
        labs.LabFilter(date_from=date(2020, 1, 1), date_to=date(2030, 12, 31)),
    ],
    ids=["all", "test", "status", "dates"],
)
def test_the_plain_rows_are_the_pages_rows_under_the_same_rule(
    world: World, name: str, filters: labs.LabFilter
) -> None:
    """The JSON API reads the list as plain rows (`latest_rows`), the pages as ORM objects
    (`latest_page`): one builder, so every reader sees the same results, versions, order,
    and cursors through both, for the patient themself, a provider of theirs and anyone."""
    # A correction only the care team sees: the patient is still shown the version before it.
    labs.add_version(
        world.session,
        world.actor("dr_chen"),
        world.published_result_id,
        labs.ResultInput("4.1", None, None, ResultStatus.CORRECTED, Visibility.PROVIDER_ONLY),
        reason="Repeat sample, pending review.",
    )
    actor = world.actor(name)
    for patient in (None, world.patient_id):
        shape = replace(filters, patient_id=patient)
        if patient is not None and name in ("bob", "dr_okafor"):
            with pytest.raises(NotFound):
                labs.latest_rows(world.session, actor, shape)
            continue
        pages = labs.latest_page(world.session, actor, shape, limit=4)
        rows = labs.latest_rows(world.session, actor, shape, limit=4)
        assert [tuple(r)[: len(labs.LAB_ROW_COLUMNS)] for r in rows.rows] == _shown(pages)
        assert rows.next_cursor == pages.next_cursor
        after = labs.latest_rows(world.session, actor, shape, cursor=rows.next_cursor, limit=4)
        later = labs.latest_page(world.session, actor, shape, cursor=pages.next_cursor, limit=4)
        assert [r.id for r in after.rows] == [r.result.id for r in later.rows]

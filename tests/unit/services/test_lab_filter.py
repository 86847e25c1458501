"""The patient's result list filter and page cursor, as `portal.services.labs` reads them for
every door (the page and the JSON API)."""

from __future__ import annotations

from datetime import date

import pytest

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

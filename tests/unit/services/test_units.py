"""UCUM codes written as people read them (issue 12, point 4), for pages only."""

from __future__ import annotations

import pytest

from portal.services.catalog import CATALOG, human_units


@pytest.mark.parametrize(
    ("code", "shown"),
    [
        ("10*3/uL", "10³/µL"),
        ("10*6/uL", "10⁶/µL"),
        ("10*9/L", "10⁹/L"),
        ("m[IU]/L", "mIU/L"),
        ("umol/L", "µmol/L"),
        ("ug/dL", "µg/dL"),
        ("{cells}/uL", "cells/µL"),
        ("Cel", "°C"),
        ("mg/dL", "mg/dL"),
        ("mmol/L", "mmol/L"),
        ("%", "%"),
        ("", ""),
        (None, ""),
    ],
)
def test_codes_read_as_people_write_them(code: str | None, shown: str) -> None:
    assert human_units(code) == shown


def test_no_unit_in_the_catalog_is_shown_as_a_raw_code() -> None:
    for test in CATALOG:
        assert not set("*[]{}") & set(human_units(test.units)), test.units

"""The trend chart's geometry (`portal.services.trends`): a fixed number of y-axis ticks, and
no chart, only the table, when the values cannot be laid out."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from portal.models import Flag
from portal.services import trends

START = datetime(2026, 1, 5, 9, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_hang() -> Iterator[None]:
    """Fail, rather than hang the suite, if a layout loops (the issue's endless tick loop)."""

    def hung(*_args: object) -> None:
        raise TimeoutError("the layout did not finish in 5 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _series(*values: float, low: float | None = None, high: float | None = None) -> trends.Series:
    points = [
        trends.TrendPoint(
            result_id=i,
            when=START + timedelta(days=30 * i),
            value_text=repr(v),
            value=v,
            units="mg/dL",
            flag=Flag.UNKNOWN,
        )
        for i, v in enumerate(values)
    ]
    series = trends.Series(units="mg/dL", points=points, low=low, high=high)
    trends._layout(series)
    return series


@pytest.mark.parametrize(
    "values",
    [
        pytest.param((0.0, 5e-324), id="a-subnormal-spread"),
        pytest.param((float("inf"), 4.0), id="infinity-already-stored"),
        pytest.param((4.0, float("nan")), id="not-a-number"),
        pytest.param((-1.7e308, 1.7e308), id="a-spread-past-the-largest-float"),
    ],
)
def test_values_the_chart_cannot_lay_out_fall_back_to_the_table(values: tuple[float, ...]) -> None:
    series = _series(*values)

    assert not series.drawn
    assert (series.y_ticks, series.path) == ([], "")
    assert [p.value_text for p in series.points] == [repr(v) for v in values]  # the table


@pytest.mark.parametrize(
    "values",
    [
        pytest.param((36893488147419103232.0, 36893488147419111424.0), id="near-2**65"),
        pytest.param((1e15, 1e15 + 0.125), id="at-the-entry-limit"),
        pytest.param((0.3, 0.1 + 0.2), id="float-noise"),
    ],
)
def test_values_one_float_step_apart_are_one_level_with_the_fixed_ticks(
    values: tuple[float, ...],
) -> None:
    # The reproduction: near 2**65 the old `tick += step` never moved, and never ended.
    series = _series(*values)

    assert series.drawn
    assert len(series.y_ticks) == trends.Y_TICKS
    assert len({p.y for p in series.points}) == 1


@pytest.mark.parametrize(
    ("values", "low", "high"),
    [
        ((4.2, 4.0), 3.5, 5.1),
        ((131.0, 98.0, 250.0), 70.0, 99.0),
        ((5.0, 5.0), None, None),
        ((0.0, 0.0), None, None),
        ((999999999999999.0, 1.0), None, None),
        ((-3.0, 12.5), None, None),
        ((1e-9, 3e-9), None, None),
    ],
)
def test_the_chart_draws_a_fixed_number_of_ticks_spanning_every_value(
    values: tuple[float, ...], low: float | None, high: float | None
) -> None:
    series = _series(*values, low=low, high=high)

    assert series.drawn
    assert len(series.y_ticks) == trends.Y_TICKS
    ys = [y for y, _label in series.y_ticks]
    assert ys == sorted(ys, reverse=True)  # bottom to top
    assert len({label for _y, label in series.y_ticks}) == trends.Y_TICKS
    top, bottom = trends.TOP, trends.HEIGHT - trends.BOTTOM
    assert all(top <= p.y <= bottom for p in series.points)

"""A test's earlier values as chart geometry, a data table and a one-line summary, from one read.

The chart, its table and its summary all come from the same `Trend`, so they cannot disagree.
Values in different units are never joined: each unit gets its own series (and chart).
The template (templates/patient/_trend_chart.html) only draws what this module computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import gettext, ngettext
from sqlalchemy import Integer, Select, bindparam, select
from sqlalchemy.orm import Session

from portal.access import Actor, RoleScope, reader, scoped
from portal.i18n import day_text, month_text
from portal.models import Flag, LabResult, LabResultVersion, ResultStatus
from portal.services.catalog import human_units
from portal.services.labs import list_latest

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 20, 44
MAX_POINTS = 12
#: The y axis always has this many ticks (and a loop over them, never over the values).
Y_TICKS = 5
OUT_OF_RANGE = {Flag.LOW, Flag.HIGH, Flag.CRITICAL_LOW, Flag.CRITICAL_HIGH, Flag.ABNORMAL}


@dataclass(slots=True)
class TrendPoint:
    result_id: int
    when: datetime
    value_text: str
    value: float | None
    units: str
    flag: Flag
    #: Set when the value shown replaced an earlier one (a correction or amendment), with when.
    corrected_version: int | None = None
    corrected_at: datetime | None = None
    corrected_from: str | None = None
    reason: str | None = None
    is_current: bool = False

    @property
    def is_abnormal(self) -> bool:
        """Judged outside its reference range (not normal, and not unjudged)."""
        return self.flag not in (Flag.NORMAL, Flag.UNKNOWN)

    x: float = 0.0
    y: float = 0.0
    marker: int | None = None  # the number of its note under the chart


@dataclass(slots=True)
class Series:
    units: str
    points: list[TrendPoint]
    low: float | None
    high: float | None
    #: geometry (SVG user units)
    band: tuple[float, float] | None = None  # (y_top, height)
    path: str = ""
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    summary: str = ""
    description: str = ""
    #: False when the values cannot be laid out as a chart: the page shows only the table.
    drawn: bool = False

    @property
    def charted(self) -> list[TrendPoint]:
        return [p for p in self.points if p.value is not None]


@dataclass(slots=True)
class Trend:
    test_name: str
    series: list[Series]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    top: int = TOP
    bottom_edge: int = HEIGHT - BOTTOM

    @property
    def points(self) -> list[TrendPoint]:
        return sorted((p for s in self.series for p in s.points), key=lambda p: p.when)


def _history_stmt(rs: RoleScope) -> Select[LabResultVersion]:
    """The versions of the results `:result_ids` (a list), oldest first."""
    result_ids = bindparam("result_ids", type_=Integer, expanding=True)
    stmt = select(LabResultVersion).where(LabResultVersion.lab_result_id.in_(result_ids))
    return rs.scope(stmt.order_by(LabResultVersion.version), LabResultVersion)


def trend_for(
    session: Session, actor: Actor, result: LabResult, *, limit: int = MAX_POINTS
) -> Trend:
    """The last `limit` results of `result`'s test for the same patient, as the actor sees
    them, placed by when their samples were taken (a correction keeps its place in time)."""
    latest = list_latest(
        session, actor, patient_id=result.patient_id, test_code=result.test_code, limit=limit
    )
    rows = [(row.result, row.version) for row in latest]
    ids = [r.id for r, _v in rows]
    history: dict[int, list[LabResultVersion]] = {}
    if ids:
        versions = session.scalars(scoped(_history_stmt, actor), reader(actor, result_ids=ids))
        for v in versions:
            history.setdefault(v.lab_result_id, []).append(v)
    points: list[TrendPoint] = []
    for r, v in reversed(rows):  # oldest first
        seen = history.get(r.id, [v])
        point = TrendPoint(
            result_id=r.id,
            when=r.collected_at,
            value_text=v.result_value,
            value=v.numeric_value,
            units=v.units or "",
            flag=v.flag,
            is_current=r.id == result.id,
        )
        if len(seen) > 1 and v.status in (ResultStatus.CORRECTED, ResultStatus.AMENDED):
            point.corrected_version = v.version
            point.corrected_at = v.published_at
            point.corrected_from = seen[-2].result_value
            point.reason = v.change_reason
        points.append(point)
    by_units: dict[str, list[TrendPoint]] = {}
    for p in points:
        by_units.setdefault(p.units, []).append(p)
    newest_units = points[-1].units if points else ""
    # The series in the newest result's units first; the others follow.
    order = sorted(by_units, key=lambda u: (u != newest_units, u))
    latest_by_id = {r.id: v for r, v in rows}
    series = []
    marker = 0
    for units in order:
        pts = by_units[units]
        ref = latest_by_id[pts[-1].result_id]
        s = Series(units=units, points=pts, low=ref.reference_low, high=ref.reference_high)
        for p in pts:
            if p.corrected_version is not None:
                marker += 1
                p.marker = marker
        _layout(s)
        s.summary = _summary(pts)
        s.description = _description(result.test_name, s)
        series.append(s)
    return Trend(test_name=result.test_name, series=series)


def _summary(points: list[TrendPoint]) -> str:
    judged = [p for p in points if p.flag is not Flag.UNKNOWN]
    if not judged:
        return gettext("There is no reference range to compare these values with.")
    within = sum(1 for p in judged if p.flag is Flag.NORMAL)
    if len(judged) == 1:
        if within:
            return gettext("The only value is within range.")
        return gettext("The only value is outside the range.")
    return ngettext(
        "%(within)d of the last %(num)d within range.",
        "%(within)d of the last %(num)d within range.",
        len(judged),
        within=within,
    )


def _description(test_name: str, s: Series) -> str:
    pts = s.points
    if not pts:
        return ""
    units = f" {human_units(s.units)}" if s.units else ""
    # Sentences for the chart's description, in the reader's language; values as measured.
    parts = [
        ngettext(
            "%(num)d %(test)s value%(units)s from %(start)s to %(end)s.",
            "%(num)d %(test)s values%(units)s from %(start)s to %(end)s.",
            len(pts),
            test=test_name,
            units=units,
            start=day_text(pts[0].when),
            end=day_text(pts[-1].when),
        ),
    ]
    if s.low is not None or s.high is not None:
        parts.append(
            gettext(
                "Reference range %(range)s%(units)s.", range=_range_text(s.low, s.high), units=units
            )
        )
    corrected = gettext(" (corrected)")
    values = ", ".join(p.value_text + (corrected if p.corrected_version else "") for p in pts)
    parts.append(gettext("Values, oldest first: %(values)s.", values=values))
    parts.append(s.summary)
    return " ".join(parts)


def _range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return gettext("%(low)s to %(high)s", low=_num(low), high=_num(high))
    if high is not None:
        return gettext("below %(high)s", high=_num(high))
    return gettext("above %(low)s", low=_num(low or 0))


def _num(value: float) -> str:
    return f"{value:g}"


def _nice_step(raw: float) -> float | None:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least `raw` (> 0), or None
    when floats have no such step (`raw` infinite, or too small for a power of ten)."""
    if not (math.isfinite(raw) and raw > 0):
        return None
    magnitude = 10.0 ** math.floor(math.log10(raw))
    if magnitude == 0:
        return None
    return next((m * magnitude for m in (1, 2, 2.5, 5) if raw <= m * magnitude), 10 * magnitude)


def _tick_label(value: float, step: float) -> str:
    """`value` with the significant digits that tell it from a neighbour `step` away, and no
    float noise (0.30000000000000004 reads 0.3)."""
    size = math.floor(math.log10(max(abs(value), step)))
    precision = size - math.floor(math.log10(step)) + 2  # a 2.5 step needs a second digit
    return f"{value:.{max(precision, min(size + 1, 16))}g}"


#: Values closer than this, relative to their size, are one value to the chart (float noise
#: such as 0.3 and 0.30000000000000004, or two values one float step apart near 2**65).
SAME_VALUE = 1e-9


def _y_ticks(lo: float, hi: float) -> list[tuple[float, str]] | None:
    """`Y_TICKS` evenly spaced round values (with their labels) from at or below `lo` to at
    or above `hi`, or None when floats cannot lay them out: a bound not finite or a spread
    past the largest float, a spread too small for a power of ten, or ticks that adding a
    step does not move evenly or that their labels cannot tell apart."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    if hi - lo <= SAME_VALUE * max(abs(lo), abs(hi)):
        pad = abs(hi) / 10 or 1.0
        lo, hi = hi - pad / 2, hi + pad / 2
    # The smallest round step whose ticks reach `hi`; Y_TICKS - 2 steps always do (from a
    # start at most one step below `lo`), so this tries at most three steps.
    step = _nice_step((hi - lo) / (Y_TICKS - 1))
    for _ in range(3):
        if step is None:
            return None
        start = math.floor(lo / step) * step
        if start + (Y_TICKS - 1) * step >= hi:
            break
        step = _nice_step(step * (1 + SAME_VALUE))
    else:
        return None
    ticks = [start + i * step for i in range(Y_TICKS)]
    if not all(math.isfinite(t) for t in ticks):
        return None
    if any(abs((t - start) - i * step) > step * 1e-6 for i, t in enumerate(ticks)):
        return None
    labelled = [(t, _tick_label(t, step)) for t in ticks]
    if len({label for _t, label in labelled}) < Y_TICKS:
        return None
    return labelled


def _layout(s: Series) -> None:
    """Scale the series into the plot area: points, the line through them, band and ticks.

    Leaves `s.drawn` False (no chart, the table alone) when the values cannot be laid out.
    """
    charted = s.charted
    if not charted:
        return
    values = [p.value for p in charted if p.value is not None]
    bounds = [b for b in (s.low, s.high) if b is not None]
    if not all(math.isfinite(v) for v in values + bounds):
        return  # stored before values were bounded: no place on any axis
    ticks = _y_ticks(min(values + bounds), max(values + bounds))
    if ticks is None:
        return
    lo, hi = ticks[0][0], ticks[-1][0]
    top, bottom = TOP, HEIGHT - BOTTOM
    left, right = LEFT, WIDTH - RIGHT

    def y_of(v: float) -> float:
        return round(bottom - (v - lo) / (hi - lo) * (bottom - top), 1)

    first, last = charted[0].when, charted[-1].when
    span = (last - first).total_seconds()

    def x_of(when: datetime) -> float:
        if span <= 0:
            return (left + right) / 2
        return round(left + (when - first).total_seconds() / span * (right - left), 1)

    for p in charted:
        assert p.value is not None
        p.x, p.y = x_of(p.when), y_of(p.value)
    s.path = "M " + " L ".join(f"{p.x} {p.y}" for p in charted)
    if s.low is not None or s.high is not None:
        band_top = y_of(s.high) if s.high is not None else top
        band_bottom = y_of(s.low) if s.low is not None else bottom
        s.band = (band_top, round(band_bottom - band_top, 1))
    s.y_ticks = [(y_of(tick), label) for tick, label in ticks]
    chosen = [charted[0], charted[-1]] if len(charted) > 1 else [charted[0]]
    if len(charted) > 2:
        chosen.insert(1, charted[len(charted) // 2])
    s.x_ticks = [(p.x, month_text(p.when)) for p in chosen]
    s.drawn = True

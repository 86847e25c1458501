"""Lab values: reading a number and a reference range from what was typed, and flagging it."""

from __future__ import annotations

import math
import re

from portal.models import Flag

#: A decimal number, optionally in scientific notation (`1e3`, `4.5E-2`), as the seed's data
#: may write it: read as that number and flagged like any other (`sane` refuses the absurd).
_NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"^\s*({_NUMBER})\s*[-–]\s*({_NUMBER})\s*$")
_UPPER = re.compile(rf"^\s*(?:<|<=|≤)\s*({_NUMBER})\s*$")
_LOWER = re.compile(rf"^\s*(?:>|>=|≥)\s*({_NUMBER})\s*$")
_VALUE = re.compile(rf"^\s*[<>]?\s*({_NUMBER})\s*$")


def parse_range(text: str | None) -> tuple[float | None, float | None]:
    """`"4.0-11.0"` → (4.0, 11.0); `"<200"` → (None, 200); `">40"` → (40, None)."""
    if not text:
        return None, None
    if m := _RANGE.match(text):
        return float(m[1]), float(m[2])
    if m := _UPPER.match(text):
        return None, float(m[1])
    if m := _LOWER.match(text):
        return float(m[1]), None
    return None, None


def parse_value(text: str) -> float | None:
    m = _VALUE.match(text)
    return float(m[1]) if m else None


#: The largest size a numeric value or range bound may have: past any real result in any unit
#: (red cells are about 5e12 per litre), and small enough for a chart to step between values.
MAX_MAGNITUDE = 1e15
TOO_LARGE = f"Enter a number between -{MAX_MAGNITUDE:,.0f} and {MAX_MAGNITUDE:,.0f}."


def sane(number: float | None) -> bool:
    return number is None or (math.isfinite(number) and abs(number) <= MAX_MAGNITUDE)


def compute_flag(
    value: float | None,
    low: float | None,
    high: float | None,
    critical_low: float | None = None,
    critical_high: float | None = None,
) -> Flag:
    if value is None or (low is None and high is None):
        return Flag.UNKNOWN
    if critical_low is not None and value < critical_low:
        return Flag.CRITICAL_LOW
    if critical_high is not None and value > critical_high:
        return Flag.CRITICAL_HIGH
    if low is not None and value < low:
        return Flag.LOW
    if high is not None and value > high:
        return Flag.HIGH
    return Flag.NORMAL

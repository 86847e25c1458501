"""Time zones. Times are stored and exchanged (API) in UTC; the clinic's zone
(`PORTAL_TIMEZONE`) decides what a "day" and "09:00" are for slots, hours and the cancel
cut-off; each reader sees times in their own zone (their preference, else the clinic's)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import current_app, has_app_context

from portal.db import utcnow

DEFAULT_ZONE = "UTC"


def zone_named(name: str | None) -> ZoneInfo | None:
    """The zone called `name` in the IANA database, or None for no such zone."""
    if not name or name not in known_zones():
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@cache
def known_zones() -> frozenset[str]:
    """Every zone name the database knows (system zoneinfo, else the `tzdata` package)."""
    return frozenset(available_timezones())


@cache
def zone_names() -> tuple[str, ...]:
    """The zone names people choose from: `Region/City`, sorted (no legacy aliases)."""
    return tuple(sorted(n for n in known_zones() if "/" in n and not n.startswith("Etc/")))


def clinic_zone() -> ZoneInfo:
    """The clinic's zone (the `PORTAL_TIMEZONE` setting; UTC outside an app)."""
    name = current_app.config.get("PORTAL_TIMEZONE") if has_app_context() else None
    return zone_named(name) or ZoneInfo(DEFAULT_ZONE)


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    """The calendar day `moment` falls on in `zone`."""
    return moment.astimezone(zone).date()


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first moment (UTC) of `day` in `zone`: midnight there, whatever its offset."""
    return datetime.combine(day, time(), zone).astimezone(UTC)


def wall_time(day: date, minute: int, zone: ZoneInfo) -> datetime | None:
    """The moment (UTC) the clocks in `zone` read `minute` minutes past midnight on `day`;
    None when that reading never happens there (the hour skipped when clocks go forward).
    In the hour repeated when they go back, the first (earlier) reading."""
    local = datetime.combine(day, time(), zone).replace(hour=minute // 60, minute=minute % 60)
    moment = local.astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return moment


def same_time_day_before(moment: datetime, zone: ZoneInfo) -> datetime:
    """The moment (UTC) `zone`'s clocks read the same time one calendar day earlier: 23 or 25
    hours before `moment` when the clocks changed in between, else 24."""
    local = moment.astimezone(zone)
    earlier = (local.replace(tzinfo=None) - timedelta(days=1)).replace(tzinfo=zone)
    return earlier.astimezone(UTC)


def clinic_today() -> date:
    """Today on the clinic's calendar (the schedule's "today", the first day of free times)."""
    return local_day(utcnow(), clinic_zone())

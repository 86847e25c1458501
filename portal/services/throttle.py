"""Failed sign-ins, counted per email address and per client address, and the pause they earn.

One rule for the sign-in page and the token endpoint. An email address is counted whether or
not it has an account, and a paused one gets the same answer either way, so the pause tells
nobody who has an account. The pause grows with the failures (1, 2, 4, 8 minutes, then
`longest`) instead of a hard lock: the real person can wait it out, or end it at once with
"Forgot your password?". Counting is one statement per key (an upsert), so a burst of
attempts at once is counted in full on both databases.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import ngettext
from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from portal.models import SignInThrottle


@dataclass(frozen=True, slots=True)
class Limits:
    """Failures allowed per email address and per client address within `window`."""

    per_account: int
    per_address: int
    window: timedelta
    longest: timedelta


def _key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def account_key(email: str) -> str:
    return _key("account", email.strip().lower())


def keys_for(email: str, address: str | None, limits: Limits) -> list[tuple[str, int]]:
    """The keys one attempt counts against, each with its limit."""
    found = [(account_key(email), limits.per_account)]
    if address:
        found.append((_key("address", address), limits.per_address))
    return found


def paused_message(seconds: int) -> str:
    """What a paused person reads: how long to wait, and the way round it."""
    minutes = max(1, -(-seconds // 60))
    return ngettext(
        "Too many attempts to sign in. Please wait %(num)d minute and try again, or set a new "
        'password with "Forgot your password?".',
        "Too many attempts to sign in. Please wait %(num)d minutes and try again, or set a new "
        'password with "Forgot your password?".',
        minutes,
    )


def wait_seconds(session: Session, keys: list[tuple[str, int]], now: datetime) -> int | None:
    """Seconds until every key's pause is over, or None when none is paused."""
    until = session.scalars(
        select(SignInThrottle.blocked_until).where(
            SignInThrottle.key.in_([k for k, _limit in keys]),
            SignInThrottle.blocked_until > now,
        )
    ).all()
    if not until:
        return None
    return max(1, math.ceil((max(u for u in until if u is not None) - now).total_seconds()))


def count_failure(
    session: Session, keys: list[tuple[str, int]], limits: Limits, now: datetime
) -> None:
    """Add one failure to each key (a fresh window once the last one has passed), and pause
    the keys that reached their limit."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    window_start = now - limits.window
    for key, limit in keys:
        stale = SignInThrottle.window_started_at < window_start
        stmt: Any = insert(SignInThrottle).values(
            key=key, failures=1, window_started_at=now, blocked_until=None
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[SignInThrottle.key],
            set_={
                "failures": case((stale, 1), else_=SignInThrottle.failures + 1),
                "window_started_at": case((stale, now), else_=SignInThrottle.window_started_at),
            },
        ).returning(SignInThrottle.failures)
        failures = int(session.execute(stmt).scalar_one())
        if failures >= limit:
            pause = min(limits.longest, timedelta(minutes=2 ** min(failures - limit, 10)))
            session.execute(
                update(SignInThrottle)
                .where(SignInThrottle.key == key)
                .values(blocked_until=now + pause)
            )


def clear(session: Session, email: str) -> None:
    """Forget an email address's failures (it signed in, or its password was set anew)."""
    session.execute(delete(SignInThrottle).where(SignInThrottle.key == account_key(email)))

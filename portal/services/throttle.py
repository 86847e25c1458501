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
            session.execute(
                update(SignInThrottle)
                .where(SignInThrottle.key == key)
                .values(blocked_until=now + _pause(failures, limit, limits))
            )


def _pause(failures: int, limit: int, limits: Limits) -> timedelta:
    """The pause `failures` earn against `limit`: 1, 2, 4, 8 ... minutes, at most `longest`."""
    return min(limits.longest, timedelta(minutes=2 ** min(max(failures - limit, 0), 10)))


def claim(
    session: Session, keys: list[tuple[str, int]], limits: Limits, now: datetime
) -> int | None:
    """Count this attempt as a failure before its password (or code) is checked; None when it
    may go on, else the seconds to wait. Undo the count with `release` if it succeeds.

    One statement per key claims the attempt, and only while the key is not paused: the claim
    that reaches the limit pauses the key in that same statement, so of a burst of attempts
    at once exactly the allowed number go on to the password check (counting after the check
    let every attempt of a burst through the check first). On PostgreSQL the claimed row stays
    locked until the attempt's transaction ends, so attempts on one key queue behind each
    other's check (not others': one row per key); on SQLite the write lock serialises anyway.
    """
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    window_start = now - limits.window
    first_pause = min(limits.longest, timedelta(minutes=1))
    for key, limit in keys:
        stale = SignInThrottle.window_started_at < window_start
        counted = case((stale, 1), else_=SignInThrottle.failures + 1)
        stmt: Any = insert(SignInThrottle).values(
            key=key,
            failures=1,
            window_started_at=now,
            blocked_until=now + first_pause if limit <= 1 else None,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[SignInThrottle.key],
            set_={
                "failures": counted,
                "window_started_at": case((stale, now), else_=SignInThrottle.window_started_at),
                "blocked_until": case(
                    (counted >= limit, now + first_pause), else_=SignInThrottle.blocked_until
                ),
            },
            # A paused key is not claimed: the statement then returns no row.
            where=(SignInThrottle.blocked_until.is_(None)) | (SignInThrottle.blocked_until <= now),
        ).returning(SignInThrottle.failures)
        failures = session.execute(stmt).scalar_one_or_none()
        if failures is None:
            return wait_seconds(session, keys, now) or 1
        if failures >= limit:
            # Already paused by the claim; now for as long as these failures earn.
            session.execute(
                update(SignInThrottle)
                .where(SignInThrottle.key == key)
                .values(blocked_until=now + _pause(failures, limit, limits))
            )
    return None


def release(session: Session, keys: list[tuple[str, int]]) -> None:
    """Take back the claim of an attempt whose password (or code) was right. A pause on its
    keys can only be the claim's own (a paused key is not claimed, and the claimed row stays
    the attempt's until it ends), so it goes too. A full sign-in then `clear`s the account."""
    session.execute(
        update(SignInThrottle)
        .where(SignInThrottle.key.in_([k for k, _limit in keys]), SignInThrottle.failures > 0)
        .values(failures=SignInThrottle.failures - 1, blocked_until=None)
    )


def clear(session: Session, email: str) -> None:
    """Forget an email address's failures (it signed in, or its password was set anew)."""
    session.execute(delete(SignInThrottle).where(SignInThrottle.key == account_key(email)))

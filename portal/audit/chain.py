"""The hash chain that makes the audit log tamper-evident, and its verification."""

from __future__ import annotations

import enum
import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

import psycopg
from sqlalchemy import Connection, Engine, Table, insert, select, text
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.orm import Session

from portal.audit.checkpoints import Checkpoint
from portal.audit.checkpoints import directory as checkpoint_directory
from portal.audit.checkpoints import read as read_checkpoints
from portal.audit.keys import AuditKey, Keyring, configured
from portal.models import AuditEvent

GENESIS = "0" * 64
#: Arbitrary constant naming the PostgreSQL advisory lock that serialises chain appends.
CHAIN_LOCK_KEY = 0x5041_5544  # "PAUD"


#: Columns that are not content: the row's key and the chain links themselves.
_LINKS = frozenset({"id", "prev_hash", "hash"})
#: The columns an entry's hash covers: every column of `audit_event` but id, prev_hash and
#: hash, read from the table so that a column added later is covered without anyone
#: remembering to list it here.
CONTENT: tuple[str, ...] = tuple(
    c.name for c in cast(Table, AuditEvent.__table__).columns if c.name not in _LINKS
)
#: The columns of the first version of the log. Their values are always in the canonical JSON
#: (null included); a column added since appears only when not null, so entries written before
#: it existed (null there) keep the hash they were written with.
_FIRST_CONTENT = frozenset(
    {
        "occurred_at",
        "actor_id",
        "actor_role",
        "action",
        "entity_type",
        "entity_id",
        "patient_id",
        "outcome",
        "request_id",
        "client_addr",
        "user_agent",
        "detail",
    }
)


def canonical(event: AuditEvent) -> str:
    """The entry's content as canonical JSON: what its hash covers, besides the previous hash."""
    return canonical_row({name: getattr(event, name) for name in CONTENT})


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return str(value.value)
    return value


def canonical_row(row: Mapping[str, Any]) -> str:
    """`canonical` of an entry given as its column values (before it exists as a row).

    `row` must name every content column (a KeyError otherwise: an entry whose writer forgot a
    column would be stored with a value its hash does not cover).
    """
    payload: dict[str, Any] = {
        name: _json_value(row[name])
        for name in CONTENT
        if name in _FIRST_CONTENT or row[name] is not None
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, event: AuditEvent | str, key: AuditKey | None) -> str:
    """The entry's hash: the previous hash and its content (an entry, or its canonical JSON),
    signed with `key` (HMAC-SHA256); `None` only for entries from before the chain was keyed
    (plain SHA-256), which anyone could recompute."""
    content = event if isinstance(event, str) else canonical(event)
    message = (prev_hash + "\n" + content).encode()
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key.secret, message, hashlib.sha256).hexdigest()


_LOCK = text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=CHAIN_LOCK_KEY)


def hold_append_lock(session: Session) -> None:
    """On PostgreSQL, take the append lock until the transaction ends (re-entrant). Other
    orderings that must follow commit order (event ids) take this same lock, so no second
    lock exists to deadlock against."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK)


def chain_head(session: Session) -> str:
    """The newest entry's hash, taking the append lock first where the database has one.

    On PostgreSQL a transaction-scoped advisory lock serialises appends across workers and
    hosts until commit, so two writers never link to the same predecessor. SQLite serialises
    writers itself.
    """
    hold_append_lock(session)
    last = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    return last or GENESIS


# --- The read hook's append: one entry in a short transaction of its own ---------------------

_TABLE = cast(Table, AuditEvent.__table__)
_HEAD = select(_TABLE.c.hash).order_by(_TABLE.c.id.desc()).limit(1)
_INSERT = insert(_TABLE)


#: `_LOCK` and `_HEAD` as PostgreSQL text and parameters, for `_locked_head` (compiled once).
_PG_LOCK, _PG_HEAD = (stmt.compile(dialect=psycopg_dialect()) for stmt in (_LOCK, _HEAD))


def append(conn: Connection, row: dict[str, Any], content: str, key: AuditKey) -> None:
    """Link `row` (whose canonical JSON is `content`, its `key_id` `key`'s) to the chain head,
    signed with `key`, and insert it on `conn`.

    `conn` is in a transaction that holds the append lock until it commits: on PostgreSQL the
    advisory lock taken here, on SQLite the write lock (`BEGIN IMMEDIATE`, see `append_lock`).
    One Core statement each for the head and the row: no ORM unit of work inside the lock.
    """
    head = _locked_head(conn) if conn.dialect.name == "postgresql" else conn.scalar(_HEAD)
    prev = head or GENESIS
    conn.execute(_INSERT, {**row, "prev_hash": prev, "hash": entry_hash(prev, content, key)})


def _locked_head(conn: Connection) -> str | None:
    """PostgreSQL: take the advisory lock and read the chain head in one round trip.

    psycopg's pipeline mode sends both statements at once; the server runs them in order, and
    under READ COMMITTED (`portal.db`) the head's statement takes its snapshot only once the
    lock is granted, exactly as when they were sent one after the other. They go through the
    driver, so SQLAlchemy's statement events (and counts made with them) do not see them.
    """
    driver = cast(psycopg.Connection[Any], conn.connection.driver_connection)
    with driver.pipeline():
        driver.execute(str(_PG_LOCK), _PG_LOCK.params)
        head = driver.execute(str(_PG_HEAD), _PG_HEAD.params)
    found = head.fetchone()
    return None if found is None else str(found[0])


def _lock_path(engine: Engine) -> str | None:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return os.path.abspath(database) + ".audit-lock"


@contextmanager
def append_lock(engine: Engine) -> Iterator[None]:
    """On SQLite, queue appenders on an OS file lock next to the database (`<db>.audit-lock`).

    SQLite serialises writers itself, but a writer that finds the write lock taken sleeps in
    its busy handler (1, 2, 5, 10 ms ...) instead of waking when the lock is freed; appenders
    that wait on `flock` first are woken at once, and then find the write lock free (unless a
    change elsewhere holds it, when the busy handler waits as before). Only a speed-up: the
    chain's correctness still rests on SQLite's write lock. `flock` excludes other processes
    and other threads alike (each waiter opens the file itself); SQLite is single-host anyway.
    Elsewhere (PostgreSQL, in-memory databases) this does nothing.
    """
    path = _lock_path(engine)
    fd = None
    if path is not None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:  # a read-only directory: fall back on SQLite's busy handler
            fd = None
    if fd is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@dataclass(frozen=True)
class ChainBreak:
    entry_id: int
    reason: str


def _entries(session: Session, batch: int = 5000) -> Iterator[AuditEvent]:
    last_id = 0
    while True:
        # populate_existing: check what the database holds, not entries this session cached.
        stmt = select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id)
        rows = session.scalars(stmt.limit(batch).execution_options(populate_existing=True)).all()
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id
        # Keep memory flat on a long log, without detaching anything else the session holds.
        for row in rows:
            session.expunge(row)


def _signing_key(event: AuditEvent, keys: Keyring, keyed: bool) -> AuditKey | None | str:
    """The key that signed `event` (None: an entry from before keying), or why there is none."""
    if event.key_id is None:
        # Once the chain is keyed, an unkeyed entry can only be one re-hashed by someone
        # without the key: plain SHA-256 is what anyone can compute.
        return (
            "is unkeyed after keyed entries (altered, or rewritten without the key)"
            if keyed
            else None
        )
    key = keys.by_id.get(event.key_id)
    if key is None:
        return (
            f"names key {event.key_id}, which is not configured "
            "(altered, or a retired key left out of AUDIT_OLD_KEYS)"
        )
    return key


def verify(
    session: Session,
    keys: Keyring | None = None,
    checkpoints: Sequence[Checkpoint] | None = None,
) -> tuple[int, ChainBreak | None]:
    """Recompute the chain in id order; return how many entries were checked and the first break.

    Each entry must link to the one before, carry the signature of the key it names (or be an
    unkeyed entry from before keying) and, where a checkpoint was taken, be the entry it saw;
    and the chain must reach the newest checkpoint's position (else its tail was cut). By
    default the app's keys and checkpoint file.
    """
    keys = configured() if keys is None else keys
    if checkpoints is None:
        checkpoints = read_checkpoints(checkpoint_directory())
    at_position = {cp.position: cp for cp in checkpoints}
    prev = GENESIS
    count = 0
    keyed = False
    for event in _entries(session):
        count += 1
        if event.prev_hash != prev:
            return count, ChainBreak(
                event.id, "does not link to the entry before it (an entry was removed or reordered)"
            )
        key = _signing_key(event, keys, keyed)
        if isinstance(key, str):
            return count, ChainBreak(event.id, key)
        keyed = key is not None
        if entry_hash(prev, event, key) != event.hash:
            return count, ChainBreak(event.id, "content does not match its hash (altered)")
        seen = at_position.get(count)
        if seen is not None and seen.hash != event.hash:
            return count, ChainBreak(
                event.id,
                f"is not the entry checkpointed at position {count} on {seen.at:%Y-%m-%d %H:%M} "
                "UTC (the log was cut and written again, or rewritten)",
            )
        prev = event.hash
    newest = max(checkpoints, key=lambda cp: cp.position, default=None)
    if newest is not None and newest.position > count:
        return count, ChainBreak(
            newest.entry_id,
            f"is missing: the checkpoint of {newest.at:%Y-%m-%d %H:%M} UTC counted "
            f"{newest.position} entries up to it, the log now holds {count} (its tail was cut)",
        )
    return count, None

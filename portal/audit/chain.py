"""The hash chain that makes the audit log tamper-evident: sealing entries into it, and
verifying it.

Entries are written unsealed, by whoever records them, with no lock: a page view never waits
for another. The sealer (`seal`, the worker's `audit.seal` job, every second) takes the chain's
lock, reads the head, and fills in each unsealed entry's position (`seq`), link and HMAC in
the order the entries became visible, which is commit order; an entry that commits after a
later id was sealed simply gets the next position. `verify` walks the chain by position and
reports what is not sealed yet.
"""

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

from sqlalchemy import Connection, Engine, Table, bindparam, func, insert, select, text, update
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
_LINKS = frozenset({"id", "seq", "prev_hash", "hash"})
#: The columns an entry's hash covers: every column of `audit_event` but id, seq, prev_hash
#: and hash, read from the table so that a column added later is covered without anyone
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
    """On PostgreSQL, take the chain's lock until the transaction ends (re-entrant): the sealer
    holds it, and so do other orderings that must follow commit order (event ids), so no
    second lock exists to deadlock against. SQLite serialises writers itself."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK)


_TABLE = cast(Table, AuditEvent.__table__)
_INSERT = insert(_TABLE)


def append(conn: Connection, row: dict[str, Any]) -> None:
    """Insert the unsealed entry `row` on `conn`, in the caller's transaction."""
    conn.execute(_INSERT, row)


# --- Sealing ------------------------------------------------------------------------------------

_HEAD = select(_TABLE.c.seq, _TABLE.c.hash).where(_TABLE.c.seq.is_not(None))
_HEAD = _HEAD.order_by(_TABLE.c.seq.desc()).limit(1)
_SEAL = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("entry_id"), _TABLE.c.seq.is_(None))
    .values(
        seq=bindparam("seq"),
        prev_hash=bindparam("prev_hash"),
        hash=bindparam("hash"),
        key_id=bindparam("key_id"),
    )
)


def head(session: Session) -> tuple[int, str] | None:
    """The sealed chain's last position and hash; None while nothing is sealed."""
    found = session.execute(_HEAD).first()
    return None if found is None else (int(found.seq), str(found.hash))


def unsealed(session: Session) -> int:
    """How many entries are written but not yet sealed into the chain."""
    return session.scalar(select(func.count()).where(_TABLE.c.seq.is_(None))) or 0


def seal(session: Session, key: AuditKey | None = None, *, batch: int = 1000) -> int:
    """Seal up to `batch` unsealed entries into the chain, in one transaction of the caller's
    (commit it after); returns how many. Under the chain's lock (PostgreSQL: the advisory
    lock; SQLite: its write lock, which the caller's unit of work holds), so sealers in
    several processes take turns and never give two entries one position."""
    key = key or configured().current
    hold_append_lock(session)
    top = head(session)
    seq, prev = top if top is not None else (0, GENESIS)
    columns = [_TABLE.c.id, *(_TABLE.c[name] for name in CONTENT if name != "key_id")]
    waiting = session.execute(
        select(*columns).where(_TABLE.c.seq.is_(None)).order_by(_TABLE.c.id).limit(batch)
    ).all()
    seals = []
    for row in waiting:
        seq += 1
        values = {**row._mapping, "key_id": key.id}
        link = entry_hash(prev, canonical_row(values), key)
        seals.append(
            {"entry_id": row.id, "seq": seq, "prev_hash": prev, "hash": link, "key_id": key.id}
        )
        prev = link
    if seals:
        # On the connection: the ORM refuses any change to audit entries, this one included.
        session.connection().execute(_SEAL, seals)
    return len(seals)


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
    """The sealed entries in chain order."""
    last = 0
    while True:
        # populate_existing: check what the database holds, not entries this session cached.
        stmt = select(AuditEvent).where(AuditEvent.seq > last).order_by(AuditEvent.seq)
        rows = session.scalars(stmt.limit(batch).execution_options(populate_existing=True)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq or 0
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
    """Recompute the sealed chain in position order; return how many entries were checked and
    the first break (entries not sealed yet are not checked: see `unsealed`).

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
        if event.prev_hash != prev or event.seq != count:
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

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
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    case,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapper, Session

from portal.audit.checkpoints import Checkpoint
from portal.audit.checkpoints import directory as checkpoint_directory
from portal.audit.checkpoints import read as read_checkpoints
from portal.audit.keys import AuditKey, Keyring, configured
from portal.models import AuditChainStart, AuditEvent

log = logging.getLogger("portal.audit")

GENESIS = "0" * 64
#: Arbitrary constant naming the PostgreSQL advisory lock that serialises chain appends.
CHAIN_LOCK_KEY = 0x5041_5544  # "PAUD"


_TABLE = cast(Table, AuditEvent.__table__)

#: Columns that are not content: the row's key and the chain links themselves.
_LINKS = frozenset({"id", "seq", "prev_hash", "hash"})
#: The columns an entry's hash covers: every column of `audit_event` but id, seq, prev_hash
#: and hash, read from the table so that a column added later is covered without anyone
#: remembering to list it here.
CONTENT: tuple[str, ...] = tuple(c.name for c in _TABLE.columns if c.name not in _LINKS)
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


# --- The application's signature of an entry as written ---------------------------------------

#: Columns the insert signature leaves out: the seal's key (filled in later) and itself.
_UNSIGNED = {"key_id": None, "mac": None}


def _mac_secret(key: AuditKey) -> bytes:
    """The key for insert signatures, derived from the chain's `key`: one secret to keep, and
    no signature of one kind can stand for the other."""
    return hmac.new(key.secret, b"portal-audit-entry-mac", hashlib.sha256).digest()


def entry_mac(row: Mapping[Any, Any], key: AuditKey) -> str:
    """The application's signature of the entry `row` (its content columns) as it is written.

    The database never sees the key, so a row inserted straight into `audit_event`, by anyone
    holding only the database role, cannot carry a valid one: the sealer refuses it."""
    content = canonical_row({**row, **_UNSIGNED})
    return hmac.new(_mac_secret(key), content.encode(), hashlib.sha256).hexdigest()


def written_by_app(row: Mapping[Any, Any], keys: Keyring) -> bool:
    """Whether `row` carries a valid insert signature by one of `keys` (current or retired:
    an entry written just before a rotation is still the application's)."""
    mac = row.get("mac")
    if not isinstance(mac, str):
        return False
    return any(hmac.compare_digest(entry_mac(row, k), mac) for k in keys.by_id.values())


@event.listens_for(AuditEvent, "before_insert")
def _sign_entry(_mapper: Mapper[Any], _conn: Connection, target: AuditEvent) -> None:
    """Sign every entry the ORM writes (`audit.record`), whatever built it."""
    values: dict[str, Any] = {}
    for column in _TABLE.columns:
        value = getattr(target, column.key)
        if value is None and column.default is not None and column.default.is_scalar:
            # The column's default is applied after this hook: sign what will be stored.
            value = column.default.arg  # type: ignore[attr-defined]
            setattr(target, column.key, value)
        values[column.key] = value
    target.mac = entry_mac(values, configured().current)


_LOCK = text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=CHAIN_LOCK_KEY)


def hold_append_lock(session: Session) -> None:
    """On PostgreSQL, take the chain's lock until the transaction ends (re-entrant): the sealer
    holds it, and so do other orderings that must follow commit order (event ids), so no
    second lock exists to deadlock against. SQLite serialises writers itself."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK)


_INSERT = insert(_TABLE)


def append(conn: Connection, row: dict[str, Any]) -> None:
    """Insert the unsealed entry `row` on `conn`, in the caller's transaction, signed."""
    conn.execute(_INSERT, {**row, "mac": entry_mac(row, configured().current)})


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


#: Entries the sealer refused and said so (one alarm per entry and process, not every second).
_ALARMED: set[tuple[int, str | None]] = set()


def _refuse(entry_id: int, mac: str | None) -> None:
    """Alarm once on an entry without the application's signature (no content in the log:
    only its id, so no PHI)."""
    if (entry_id, mac) in _ALARMED:
        return
    if len(_ALARMED) > 10_000:
        _ALARMED.clear()
    _ALARMED.add((entry_id, mac))
    log.error(
        "audit entry %s refused by the sealer: its signature is missing or wrong, so the "
        "application did not write it (inserted straight into the database?); it stays "
        "unsealed and `audit verify` reports it",
        entry_id,
    )


def seal(session: Session, key: AuditKey | None = None, *, batch: int = 1000) -> int:
    """Seal up to `batch` unsealed entries into the chain, in one transaction of the caller's
    (commit it after); returns how many. Under the chain's lock (PostgreSQL: the advisory
    lock; SQLite: its write lock, which the caller's unit of work holds), so sealers in
    several processes take turns and never give two entries one position.

    Only entries the application signed as it wrote them (`entry_mac`) are sealed; any other
    is refused, logged and left unsealed, and the sealer goes on past it (a heap of forged
    rows cannot stall the chain)."""
    keyring = configured()
    key = key or keyring.current
    hold_append_lock(session)
    top = head(session)
    seq, prev = top if top is not None else (0, GENESIS)
    columns = [_TABLE.c.id, *(_TABLE.c[name] for name in CONTENT if name != "key_id")]
    seals: list[dict[str, Any]] = []
    after = 0
    while len(seals) < batch:
        waiting = session.execute(
            select(*columns)
            .where(_TABLE.c.seq.is_(None), _TABLE.c.id > after)
            .order_by(_TABLE.c.id)
            .limit(batch)
        ).all()
        for row in waiting:
            after = row.id
            if not written_by_app(row._mapping, keyring):
                _refuse(row.id, row.mac)
                continue
            seq += 1
            values = {**row._mapping, "key_id": key.id}
            link = entry_hash(prev, canonical_row(values), key)
            seals.append(
                {"entry_id": row.id, "seq": seq, "prev_hash": prev, "hash": link, "key_id": key.id}
            )
            prev = link
            if len(seals) == batch:
                break
        if len(waiting) < batch:
            break
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
    """The key that signed `event` (None: an entry from before keying), or why there is none.
    `keyed`: the chain is keyed at this position (it began to be, or a keyed entry came
    before)."""
    if event.key_id is None:
        # Once the chain is keyed, an unkeyed entry can only be one re-hashed by someone
        # without the key: plain SHA-256 is what anyone can compute.
        return (
            "is unkeyed where the chain is keyed (altered, or rewritten without the key)"
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


def keyed_from(session: Session) -> int:
    """The first chain position that must be keyed (`audit_chain_start`, migration 0018); 1,
    the strictest, should the record be missing."""
    found = session.scalar(select(AuditChainStart.keyed_from).where(AuditChainStart.id == 1))
    return 1 if found is None else int(found)


_ACCOUNT = select(
    func.count().label("rows"),
    func.coalesce(func.sum(case((_TABLE.c.seq.is_(None), 1), else_=0)), 0).label("unsealed"),
    func.coalesce(func.sum(case((_TABLE.c.seq > bindparam("walked"), 1), else_=0)), 0).label(
        "later"
    ),
)


def _account(session: Session, walked: int) -> ChainBreak | None:
    """Every row must be in the chain (the `walked` positions checked, or sealed since) or
    waiting for it, and every one waiting must be the application's: else a row was parked
    outside the chain (to be deleted unnoticed), or inserted behind the application's back."""
    counts = session.execute(_ACCOUNT, {"walked": walked}).one()
    outside = int(counts.rows) - walked - int(counts.unsealed) - int(counts.later)
    if outside:
        first = session.scalar(
            select(func.min(_TABLE.c.id)).where(
                _TABLE.c.seq.is_not(None), (_TABLE.c.seq < 1) | (_TABLE.c.seq > walked)
            )
        )
        return ChainBreak(
            int(first or 0),
            f"is one of {outside} entries neither in the chain nor waiting to be sealed "
            "(hidden outside the chain)",
        )
    keyring = configured()
    columns = [_TABLE.c.id, *(_TABLE.c[name] for name in CONTENT)]
    after = 0
    while True:
        waiting = session.execute(
            select(*columns)
            .where(_TABLE.c.seq.is_(None), _TABLE.c.id > after)
            .order_by(_TABLE.c.id)
            .limit(5000)
        ).all()
        for row in waiting:
            if not written_by_app(row._mapping, keyring):
                return ChainBreak(
                    row.id,
                    "was not written by the application: its signature is missing or wrong "
                    "(inserted straight into the database); the sealer refuses it",
                )
        if not waiting:
            return None
        after = waiting[-1].id


def verify(
    session: Session,
    keys: Keyring | None = None,
    checkpoints: Sequence[Checkpoint] | None = None,
) -> tuple[int, ChainBreak | None]:
    """Recompute the sealed chain in position order; return how many entries were checked and
    the first break.

    Each entry must link to the one before, carry the signature of the key it names (or be an
    unkeyed entry from before keying began, `keyed_from`) and, where a checkpoint was taken,
    be the entry it saw; the chain must reach the newest checkpoint's position (else its tail
    was cut), and a keyed chain must have a checkpoint at all (else a chain rebuilt from
    scratch would pass). Every other row must be waiting to be sealed, with the application's
    signature (`entry_mac`). By default the app's keys and checkpoint file.
    """
    keys = configured() if keys is None else keys
    if checkpoints is None:
        checkpoints = read_checkpoints(checkpoint_directory())
    at_position = {cp.position: cp for cp in checkpoints}
    first_keyed = keyed_from(session)
    prev = GENESIS
    count = 0
    keyed = False
    last_id = 0
    for event_ in _entries(session):
        count += 1
        last_id = event_.id
        if event_.prev_hash != prev or event_.seq != count:
            return count, ChainBreak(
                event_.id,
                "does not link to the entry before it (an entry was removed or reordered)",
            )
        key = _signing_key(event_, keys, keyed or count >= first_keyed)
        if isinstance(key, str):
            return count, ChainBreak(event_.id, key)
        keyed = key is not None
        if entry_hash(prev, event_, key) != event_.hash:
            return count, ChainBreak(event_.id, "content does not match its hash (altered)")
        seen = at_position.get(count)
        if seen is not None and seen.hash != event_.hash:
            return count, ChainBreak(
                event_.id,
                f"is not the entry checkpointed at position {count} on {seen.at:%Y-%m-%d %H:%M} "
                "UTC (the log was cut and written again, or rewritten)",
            )
        prev = event_.hash
    newest = max(checkpoints, key=lambda cp: cp.position, default=None)
    if newest is not None and newest.position > count:
        return count, ChainBreak(
            newest.entry_id,
            f"is missing: the checkpoint of {newest.at:%Y-%m-%d %H:%M} UTC counted "
            f"{newest.position} entries up to it, the log now holds {count} (its tail was cut)",
        )
    problem = _account(session, count)
    if problem is not None:
        return count, problem
    if keyed and newest is None:
        return count, ChainBreak(
            last_id,
            "ends a keyed chain of which no checkpoint exists (the checkpoints were lost or "
            "are kept elsewhere, or the chain was rebuilt): take one with `audit checkpoint` "
            "only once the chain is known to be sound",
        )
    return count, None

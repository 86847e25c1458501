"""Checkpoints of the audit chain's head, kept outside the database.

The chain alone shows an entry altered, removed or moved, but not a tail cut off: the entries
before the cut still link up. So the head (its position in the chain, its id, its hash and
when it was seen) is appended at a steady interval (the worker's `audit.checkpoint` job, or
`flask audit checkpoint` from cron) to a file under AUDIT_CHECKPOINT_DIR, which somebody with
only database access cannot touch. `chain.verify` then requires every checkpointed position to
exist and to hold the checkpointed hash.

The head read here is the newest sealed entry: entries are sealed into the chain by the worker
shortly after they are written (`chain.seal`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from portal.audit import stamps
from portal.db import utcnow
from portal.models import AuditEvent

log = logging.getLogger("portal.audit")

FILE_NAME = "checkpoints.jsonl"


class CheckpointFileError(RuntimeError):
    """The checkpoint file cannot be read as checkpoints (damaged or edited)."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    #: How many entries the chain held (1-based position of the head in chain order).
    position: int
    entry_id: int
    hash: str
    at: datetime
    #: Ed25519 over `payload()` (base64), `stamps.sign`.
    signature: str | None = None
    #: The time-stamp authority's answer for `payload()` (a TimeStampResp, base64).
    tsa: str | None = None

    def payload(self) -> bytes:
        """What the signature and the time-stamp cover: the checkpoint's own four fields."""
        data: dict[str, Any] = {"position": self.position, "entry_id": self.entry_id}
        data |= {"hash": self.hash, "at": self.at.isoformat()}
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    def line(self) -> str:
        data: dict[str, Any] = asdict(self) | {"at": self.at.isoformat()}
        data = {k: v for k, v in data.items() if v is not None}
        return json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"


def directory(config: Mapping[str, Any] | None = None) -> Path:
    config = current_app.config if config is None else config
    return Path(str(config["AUDIT_CHECKPOINT_DIR"]))


def head(session: Session) -> Checkpoint | None:
    """The sealed chain's head as the database holds it now; None while nothing is sealed."""
    newest = session.execute(
        select(AuditEvent.seq, AuditEvent.id, AuditEvent.hash)
        .where(AuditEvent.seq.is_not(None))
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    if newest is None or newest.hash is None:
        return None
    return Checkpoint(position=newest.seq, entry_id=newest.id, hash=newest.hash, at=utcnow())


def _parse(text: str | bytes) -> Checkpoint:
    data = json.loads(text)
    return Checkpoint(
        position=int(data["position"]),
        entry_id=int(data["entry_id"]),
        hash=str(data["hash"]),
        at=datetime.fromisoformat(data["at"]),
        signature=None if data.get("signature") is None else str(data["signature"]),
        tsa=None if data.get("tsa") is None else str(data["tsa"]),
    )


def read(folder: Path) -> list[Checkpoint]:
    """Every checkpoint in `folder`'s file, oldest first (none when there is no file yet)."""
    path = folder / FILE_NAME
    if not path.exists():
        return []
    found = []
    with path.open(encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            try:
                found.append(_parse(text))
            except (ValueError, KeyError, TypeError) as exc:
                raise CheckpointFileError(f"{path}: line {number} is not a checkpoint") from exc
    return found


def _last(folder: Path) -> Checkpoint | None:
    """The newest checkpoint, read from the file's end (the file grows for years)."""
    path = folder / FILE_NAME
    if not path.exists():
        return None
    with path.open("rb") as file:
        size = file.seek(0, os.SEEK_END)
        file.seek(max(0, size - 4096))
        lines = file.read().splitlines()
    if not lines:
        return None
    try:
        return _parse(lines[-1])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointFileError(f"{path}: its last line is not a checkpoint") from exc


def stamped(checkpoint: Checkpoint, config: stamps.StampConfig) -> Checkpoint:
    """`checkpoint` signed and, with a time-stamp authority configured, time-stamped (raises
    `stamps.StampError` when the authority does not answer: nothing is written then, and the
    next run tries again)."""
    payload = checkpoint.payload()
    signature = None if config.key is None else stamps.sign(config.key, payload)
    token = None if config.tsa_url is None else stamps.timestamp(config.tsa_url, payload)
    return replace(checkpoint, signature=signature, tsa=token)


def check(taken: Sequence[Checkpoint], config: stamps.StampConfig) -> str | None:
    """Why the checkpoints cannot be trusted, or None: each must carry a valid signature of
    the configured key, and with a time-stamp authority's certificate configured, the newest
    must carry its valid token (one `openssl ts -verify`; the signatures cover the rest)."""
    if config.public is None:
        return "no checkpoint key is configured (AUDIT_CHECKPOINT_KEY or _PUBLIC_KEY)"
    for number, checkpoint in enumerate(taken, start=1):
        if not stamps.signature_ok(config.public, checkpoint.payload(), checkpoint.signature):
            state = (
                "is unsigned"
                if checkpoint.signature is None
                else "does not match its signature (altered, or signed with another key)"
            )
            return f"checkpoint {number} (position {checkpoint.position}) {state}"
    if config.tsa_url is not None and config.tsa_ca_file is None:
        return "TSA_URL is set but AUDIT_TSA_CA_FILE is not: the time-stamps cannot be checked"
    if taken and config.tsa_ca_file is not None:
        newest = taken[-1]
        if not stamps.token_ok(config.tsa_ca_file, newest.payload(), newest.tsa):
            state = "has no time-stamp" if newest.tsa is None else "has a time-stamp that fails"
            return f"the newest checkpoint (position {newest.position}) {state}"
    return None


def write(
    session: Session, folder: Path, config: stamps.StampConfig | None = None
) -> Checkpoint | None:
    """Append the chain's head, signed and time-stamped, to `folder`'s checkpoint file, unless
    it is the one already there (an idle log adds no lines); return what was written."""
    current = head(session)
    last = _last(folder)
    if current is None or (last and (last.position, last.hash) == (current.position, current.hash)):
        return None
    current = stamped(current, stamps.configured(current_app.config) if config is None else config)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    # One write() on an O_APPEND descriptor: a line is never interleaved with another
    # writer's, nor anything already there overwritten; fsync so a crash keeps it.
    fd = os.open(folder / FILE_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, current.line().encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return current


#: Arbitrary constant naming the PostgreSQL advisory lock of the one checkpoint writer.
WRITER_LOCK_KEY = 0x5041_4350  # "PACP"
_lease_guard = threading.Lock()
#: This process's hold on the writer lease: a connection of its own, kept for its life.
_lease: Connection | None = None
_refused_once = False


def writer_lease(engine: Engine) -> bool:
    """Whether this process is the one that writes checkpoints (issue 21, point 4).

    Several hosts each running a worker would each append to their own sink, and no sink
    would hold every checkpoint. So on PostgreSQL the writer holds a session-level advisory
    lock on a connection of its own for as long as it runs: the first worker to ask becomes
    the writer, the others write nothing (and say so once), and if it dies its connection
    ends, so the lock frees and another takes over at its next turn. SQLite serves one host.
    """
    global _lease
    if engine.dialect.name != "postgresql":
        return True
    with _lease_guard:
        if _lease is not None:
            try:
                _lease.exec_driver_sql("SELECT 1")
                return True
            except DBAPIError:
                _lease.invalidate()
                _lease = None
        # Autocommit: it changes nothing, and the lock is the connection's, not a transaction's.
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        held = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": WRITER_LOCK_KEY}))
        if not held:
            conn.close()
            return False
        _lease = conn
        return True


def release_writer_lease() -> None:
    """Give the lease up (tests; a process ending gives it up with its connection)."""
    global _lease, _refused_once
    with _lease_guard:
        if _lease is not None:
            # Session-level: a pooled connection keeps the lock unless it is let go here.
            _lease.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": WRITER_LOCK_KEY})
            _lease.close()
            _lease = None
        _refused_once = False


def take(session: Session) -> int:
    """The worker's job: checkpoint the configured chain's head; 1 when a line was added.
    Only in the one process that writes checkpoints (AUDIT_CHECKPOINT_WRITER, `writer_lease`)."""
    global _refused_once
    if not current_app.config.get("AUDIT_CHECKPOINT_WRITER", True):
        return 0
    if not writer_lease(session.get_bind().engine):
        if not _refused_once:
            _refused_once = True
            log.error(
                "audit checkpoints: another process holds the writer lease, so this one "
                "writes none (set AUDIT_CHECKPOINT_WRITER=0 on all but one worker)"
            )
        return 0
    return 0 if write(session, directory()) is None else 1

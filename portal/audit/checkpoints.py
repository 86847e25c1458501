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
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import AuditEvent

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

    def line(self) -> str:
        data: dict[str, Any] = asdict(self) | {"at": self.at.isoformat()}
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


def write(session: Session, folder: Path) -> Checkpoint | None:
    """Append the chain's head to `folder`'s checkpoint file, unless it is the one already
    there (an idle log adds no lines); return what was written."""
    current = head(session)
    last = _last(folder)
    if current is None or (last and (last.position, last.hash) == (current.position, current.hash)):
        return None
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


def take(session: Session) -> int:
    """The worker's job: checkpoint the configured chain's head; 1 when a line was added."""
    return 0 if write(session, directory()) is None else 1

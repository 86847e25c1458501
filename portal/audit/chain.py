"""The hash chain that makes the audit log tamper-evident, and its verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from portal.models import AuditEvent

GENESIS = "0" * 64
#: Arbitrary constant naming the PostgreSQL advisory lock that serialises chain appends.
CHAIN_LOCK_KEY = 0x5041_5544  # "PAUD"


def canonical(event: AuditEvent) -> str:
    """The entry's content as canonical JSON: what its hash covers, besides the previous hash."""
    occurred: datetime = event.occurred_at
    payload: dict[str, Any] = {
        "occurred_at": occurred.isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_role": event.actor_role,
        "action": str(event.action),
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "patient_id": event.patient_id,
        "outcome": str(event.outcome),
        "request_id": event.request_id,
        "client_addr": event.client_addr,
        "user_agent": event.user_agent,
        "detail": event.detail,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256((prev_hash + "\n" + canonical(event)).encode()).hexdigest()


def chain_head(session: Session) -> str:
    """The newest entry's hash, taking the append lock first where the database has one.

    On PostgreSQL a transaction-scoped advisory lock serialises appends across workers and
    hosts until commit, so two writers never link to the same predecessor. SQLite serialises
    writers itself.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})
    last = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    return last or GENESIS


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


def verify(session: Session) -> tuple[int, ChainBreak | None]:
    """Recompute the chain in id order; return how many entries were checked and the first break."""
    prev = GENESIS
    count = 0
    for event in _entries(session):
        count += 1
        if event.prev_hash != prev:
            return count, ChainBreak(
                event.id, "does not link to the entry before it (an entry was removed or reordered)"
            )
        if entry_hash(prev, event) != event.hash:
            return count, ChainBreak(event.id, "content does not match its hash (altered)")
        prev = event.hash
    return count, None

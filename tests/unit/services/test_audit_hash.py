"""The audit hash covers every column of `audit_event` but the key and the chain links.

The columns come from the table itself, not from `chain.CONTENT`: a column added to the table
is altered here too, and fails until the hash covers it.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from flask import Flask
from sqlalchemy import Column, Table, func, select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.actor import ORIGIN_KEY, Actor, Origin
from portal.audit import chain
from portal.models import AuditAction, AuditEvent, AuditOutcome, Entity
from tests.conftest import Demo
from tests.unit.test_audit_chain import (
    disable_append_only_triggers,
    sealed,
    verify_checkpointed,
)

TABLE = cast(Table, AuditEvent.__table__)
NOT_CONTENT = {"id", "seq", "prev_hash", "hash"}
COLUMNS = [c.name for c in TABLE.columns if c.name not in NOT_CONTENT]


def test_the_hash_covers_exactly_the_tables_content_columns() -> None:
    assert set(chain.CONTENT) == set(COLUMNS)


@pytest.fixture
def entry(app_ctx: Flask, session: Session, people: Demo) -> AuditEvent:
    """An entry with every column filled in, recorded as a request would record it."""
    alice = people.user("alice")
    assert alice.patient is not None
    # Where a request's entries come from rides on its session (`web.identity` puts it there).
    session.info[ORIGIN_KEY] = Origin("req-0001", "192.0.2.10", "UA")
    row = audit.record(
        session,
        Actor.of(alice),
        AuditAction.VIEW,
        Entity.LAB_RESULT,
        1234,
        patient_id=alice.patient.id,
        detail={"version": 1},
    )
    del session.info[ORIGIN_KEY]
    # A second entry after it: an altered entry is named, not the last one by default.
    audit.record(session, None, AuditAction.VIEW, Entity.DASHBOARD)
    sealed(session)
    assert verify_checkpointed(session)[1] is None
    return row


def _other_value(session: Session, column: Column[Any], value: Any) -> Any:
    """A value of `column`'s type different from `value` that the database accepts."""
    if column.foreign_keys:
        (fk,) = column.foreign_keys
        target = fk.column
        other = session.connection().scalar(
            select(func.min(target)).where(target != value)
            if value is not None
            else select(func.min(target))
        )
        assert other is not None
        return other
    if isinstance(value, enum.Enum):
        return next(m for m in type(value) if m is not value)
    if isinstance(value, datetime):
        return value + timedelta(seconds=1)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value[:-1] + ("y" if value.endswith("x") else "x") if value else "x"
    if value is None and column.type.python_type is str:
        return "x"
    if value is None and issubclass(column.type.python_type, enum.Enum):
        return next(iter(column.type.python_type))
    raise AssertionError(f"teach this test to alter {column.name} ({column.type!r} = {value!r})")


@pytest.mark.parametrize("name", COLUMNS)
def test_altering_any_content_column_is_caught(
    session: Session, entry: AuditEvent, name: str
) -> None:
    # Arrange: an attacker with SQL access, and a value the column could plausibly hold
    disable_append_only_triggers(session)
    column = TABLE.c[name]
    conn = session.connection()
    current = conn.scalar(select(column).where(TABLE.c.id == entry.id))
    new = _other_value(session, column, current)
    # Act: a Core UPDATE on the connection (the ORM would refuse to change an entry)
    conn.execute(update(TABLE).where(TABLE.c.id == entry.id).values({name: new}))
    # Assert
    assert conn.scalar(select(column).where(TABLE.c.id == entry.id)) != current
    checked, problem = chain.verify(session)
    assert problem is not None, f"changing {name} went unnoticed"
    assert problem.entry_id == entry.id
    assert "altered" in problem.reason
    assert checked >= 2


def test_the_canonical_json_of_the_first_columns_is_unchanged() -> None:
    # Entries already written keep their hash: this is the JSON the first version produced.
    row: dict[str, Any] = {name: None for name in chain.CONTENT} | {
        "occurred_at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        "actor_id": 7,
        "actor_role": "provider",
        "action": AuditAction.VIEW,
        "entity_type": "lab_result",
        "entity_id": "12",
        "patient_id": 3,
        "outcome": AuditOutcome.SUCCESS,
        "request_id": "abc",
        "client_addr": "10.0.0.1",
        "user_agent": "Firefox é",
        "detail": '{"via":"session"}',
    }
    assert chain.canonical_row(row) == (
        '{"action":"view","actor_id":7,"actor_role":"provider","client_addr":"10.0.0.1",'
        '"detail":"{\\"via\\":\\"session\\"}","entity_id":"12","entity_type":"lab_result",'
        '"occurred_at":"2026-01-02T03:04:05.000006+00:00","outcome":"success","patient_id":3,'
        '"request_id":"abc","user_agent":"Firefox é"}'
    )
    nulls = row | {"actor_id": None, "patient_id": None, "client_addr": None, "user_agent": None}
    assert chain.canonical_row(nulls) == (
        '{"action":"view","actor_id":null,"actor_role":"provider","client_addr":null,'
        '"detail":"{\\"via\\":\\"session\\"}","entity_id":"12","entity_type":"lab_result",'
        '"occurred_at":"2026-01-02T03:04:05.000006+00:00","outcome":"success","patient_id":null,'
        '"request_id":"abc","user_agent":null}'
    )


def test_a_row_missing_a_content_column_cannot_be_hashed() -> None:
    with pytest.raises(KeyError):
        chain.canonical_row({name: None for name in chain.CONTENT if name != "client_addr"})

"""The audit log is a hash chain: `audit verify` names the first entry altered, removed or moved.

Entries are written unsealed and sealed into the chain afterwards (the worker's job); these
tests seal what they wrote themselves."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from portal import audit
from portal.actor import Actor
from portal.audit import chain, checkpoints, keys
from portal.audit.chain import GENESIS, ChainBreak, canonical, entry_hash, verify
from portal.models import AuditAction, AuditEvent, AuditOutcome, Entity, Role


def sealed(session: Session) -> int:
    """Seal what is unsealed, as the worker would, and let the session see the seals."""
    done = chain.seal(session)
    session.expire_all()
    return done


def _record(session: Session, n: int, actor_id: int | None = None) -> list[AuditEvent]:
    entries = [
        audit.record(
            session,
            None if actor_id is None else Actor(actor_id, Role.PROVIDER),
            AuditAction.VIEW,
            Entity.LAB_RESULT,
            1000 + i,
            detail={"n": i},
            by="provider",
        )
        for i in range(n)
    ]
    sealed(session)
    return entries


def verify_checkpointed(session: Session) -> tuple[int, ChainBreak | None]:
    """`verify` against a checkpoint of the head taken now: a keyed chain needs one."""
    taken = checkpoints.head(session)
    return verify(session, checkpoints=[] if taken is None else [taken])


def take_checkpoint(app: Flask) -> str:
    result = app.test_cli_runner().invoke(args=["audit", "checkpoint"])
    assert result.exit_code == 0, result.output
    return result.output


def disable_append_only_triggers(session: Session) -> None:
    """Play the attacker with database access: lift the triggers, inside the test's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
    else:
        for name in ("seal_once", "seal_next", "insert_unsealed", "no_delete"):
            session.execute(text(f"DROP TRIGGER audit_event_{name}"))


def run_verify(app: Flask) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    return result.exit_code, result.output


def test_each_entry_links_to_the_hash_of_the_one_before(session: Session) -> None:
    first, second, third = _record(session, 3)
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert third.hash == entry_hash(second.hash, third, keys.configured().current)
    assert len({first.hash, second.hash, third.hash}) == 3


def test_the_hash_covers_every_recorded_field(session: Session) -> None:
    (entry,) = _record(session, 1)
    fields = canonical(entry)
    for value in ('"lab_result"', '"1000"', '"view"', '"success"', '"provider"', '{\\"n\\":0}'):
        assert value in fields


def test_verify_passes_on_an_intact_log(app_ctx: Flask, session: Session) -> None:
    _record(session, 4)
    session.commit()
    count, problem = verify_checkpointed(session)
    assert problem is None
    assert count == session.scalar(select(func.count(AuditEvent.id)))
    assert chain.unsealed(session) == 0
    take_checkpoint(app_ctx)

    code, output = run_verify(app_ctx)

    assert code == 0, output
    assert "intact" in output


def test_verify_names_an_altered_entry(app_ctx: Flask, session: Session) -> None:
    # Arrange
    entries = _record(session, 4)
    session.commit()
    target = entries[1]
    disable_append_only_triggers(session)
    # Act: change who the entry says was looked at, as someone with SQL access could.
    session.execute(
        text("UPDATE audit_event SET entity_id = '9999' WHERE id = :id"), {"id": target.id}
    )
    code, output = run_verify(app_ctx)
    # Assert
    assert code != 0
    assert f"entry {target.id}:" in output
    assert "altered" in output


def test_verify_names_the_entry_after_a_removed_one(app_ctx: Flask, session: Session) -> None:
    entries = _record(session, 4)
    session.commit()
    disable_append_only_triggers(session)

    session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": entries[1].id})
    code, output = run_verify(app_ctx)

    assert code != 0
    assert f"entry {entries[2].id}:" in output
    assert "removed or reordered" in output


def test_verify_names_the_first_of_two_reordered_entries(app_ctx: Flask, session: Session) -> None:
    entries = _record(session, 4)
    session.commit()
    a, b = entries[1], entries[2]
    disable_append_only_triggers(session)

    # Swap the two entries' positions in the chain.
    for entry_id, seq in ((a.id, -1), (b.id, a.seq), (a.id, b.seq)):
        session.execute(
            text("UPDATE audit_event SET seq = :seq WHERE id = :id"), {"seq": seq, "id": entry_id}
        )
    code, output = run_verify(app_ctx)

    assert code != 0
    assert f"entry {b.id}:" in output


def test_entries_are_chained_in_the_order_they_are_sealed_not_by_id(session: Session) -> None:
    # An entry whose transaction commits after a later id was sealed takes the next position.
    first, second = _record(session, 2)
    late = audit.record(session, None, AuditAction.VIEW, Entity.DASHBOARD)
    assert late.seq is None
    assert late.hash is None
    sealed(session)
    assert late.seq == second.seq + 1
    assert late.prev_hash == second.hash
    assert verify_checkpointed(session)[1] is None


def test_the_database_lets_a_seal_be_filled_once_and_nothing_else(session: Session) -> None:
    (entry,) = _record(session, 1)
    unsealed_entry = audit.record(session, None, AuditAction.VIEW, Entity.DASHBOARD)
    session.flush()
    for sql in (
        "UPDATE audit_event SET hash = 'f' WHERE id = :id",  # a sealed entry: resealed
        "UPDATE audit_event SET entity_type = 'y' WHERE id = :id",
    ):
        with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
            session.execute(text(sql), {"id": entry.id})
    # Filling an empty seal is allowed, but only together with nothing else
    with pytest.raises(DBAPIError, match="append-only|seal refused"), session.begin_nested():
        session.execute(
            text("UPDATE audit_event SET seq = 999999, entity_type = 'y' WHERE id = :id"),
            {"id": unsealed_entry.id},
        )


def test_verify_starts_the_chain_at_the_genesis_hash(session: Session) -> None:
    _record(session, 1)
    first = session.scalar(select(AuditEvent).where(AuditEvent.seq == 1))
    assert first is not None
    assert first.prev_hash == GENESIS


def test_denied_outcomes_are_part_of_the_chain(session: Session) -> None:
    entry = audit.record(
        session, None, AuditAction.SIGN_IN_FAILED, Entity.USER_ACCOUNT, outcome=AuditOutcome.DENIED
    )
    sealed(session)
    assert verify_checkpointed(session)[1] is None
    assert '"denied"' in canonical(entry)

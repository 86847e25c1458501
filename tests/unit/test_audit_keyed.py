"""The chain is keyed and checkpointed outside the database: a tail cut off or a chain
re-hashed without the key is noticed by `audit verify`; a rotated key and the entries from
before keying still verify (issue 12, point 7)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from alembic import command
from flask import Flask
from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from portal import audit, create_app, jobs
from portal.audit import chain, checkpoints, keys
from portal.cli import alembic_config
from portal.db import utcnow
from portal.extensions import db
from portal.models import AuditAction, AuditEvent, AuditOutcome, Entity
from tests.support import app_config, new_database
from tests.unit.test_audit_chain import (
    _record,
    disable_append_only_triggers,
    run_verify,
    verify_checkpointed,
)

TABLE: Table = AuditEvent.__table__  # type: ignore[assignment]


def _checkpoint(app: Flask) -> str:
    result = app.test_cli_runner().invoke(args=["audit", "checkpoint"])
    assert result.exit_code == 0, result.output
    return result.output


def _newest(session: Session, n: int) -> list[int]:
    stmt = select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(n)
    return list(session.scalars(stmt))


def test_a_tail_cut_after_a_checkpoint_is_noticed(app_ctx: Flask, session: Session) -> None:
    # Arrange: entries, and the head checkpointed outside the database
    _record(session, 4)
    session.commit()
    assert "Audit checkpoint: " in _checkpoint(app_ctx)
    code, output = run_verify(app_ctx)
    assert code == 0, output
    assert "intact" in output
    assert "newest checkpoint at" in output
    # Act: someone with SQL access lifts the triggers and deletes the newest two entries
    disable_append_only_triggers(session)
    cut = _newest(session, 2)
    session.execute(TABLE.delete().where(TABLE.c.id.in_(cut)))
    code, output = run_verify(app_ctx)
    # Assert: the chain still links up, but the checkpoint counted more
    assert code != 0
    assert f"entry {max(cut)}: is missing" in output
    assert "tail was cut" in output


def test_a_tail_cut_and_written_again_is_noticed(app_ctx: Flask, session: Session) -> None:
    _record(session, 3)
    session.commit()
    _checkpoint(app_ctx)
    disable_append_only_triggers(session)
    session.execute(TABLE.delete().where(TABLE.c.id.in_(_newest(session, 2))))
    # The same number of entries again, properly keyed (the app itself wrote them).
    _record(session, 2, actor_id=None)
    session.commit()

    code, output = run_verify(app_ctx)

    assert code != 0
    assert "is not the entry checkpointed at position" in output


def test_the_checkpoint_job_writes_the_head_once_until_the_log_grows(
    app_ctx: Flask, session: Session
) -> None:
    job = next(j for j in jobs.JOBS if j.name == "audit.checkpoint")
    folder = checkpoints.directory()

    assert jobs.run(job) == 1
    assert jobs.run(job) == 0  # nothing new: no line added
    _record(session, 1)
    session.commit()
    assert jobs.run(job) == 1

    taken = checkpoints.read(folder)
    assert len(taken) == 2
    assert taken[-1].entry_id == _newest(session, 1)[0]
    assert (folder / checkpoints.FILE_NAME).stat().st_mode & 0o077 == 0


def _rehash_from(session: Session, first_id: int, key: keys.AuditKey | None) -> None:
    """Re-link every entry from `first_id` on as an attacker would, signing with `key` (None:
    plain SHA-256, the pre-keying scheme anyone can compute)."""
    prev = (
        session.scalar(
            select(AuditEvent.hash)
            .where(AuditEvent.id < first_id)
            .order_by(AuditEvent.id.desc())
            .limit(1)
        )
        or chain.GENESIS
    )
    conn = session.connection()
    for row in conn.execute(select(TABLE).where(TABLE.c.id >= first_id).order_by(TABLE.c.id)):
        values = {name: getattr(row, name) for name in chain.CONTENT}
        values["key_id"] = None if key is None else key.id
        new = chain.entry_hash(prev, chain.canonical_row(values), key)
        conn.execute(
            update(TABLE)
            .where(TABLE.c.id == row.id)
            .values(key_id=values["key_id"], prev_hash=prev, hash=new)
        )
        prev = new


def test_a_chain_rehashed_without_the_key_is_noticed(app_ctx: Flask, session: Session) -> None:
    entries = _record(session, 3)
    session.commit()
    disable_append_only_triggers(session)
    target = entries[1].id
    session.execute(update(TABLE).where(TABLE.c.id == target).values(entity_id="9999"))
    # As the old unkeyed chain allowed: recompute every hash from the altered entry on.
    _rehash_from(session, target, key=None)

    code, output = run_verify(app_ctx)

    assert code != 0
    assert f"entry {target}: is unkeyed where the chain is keyed" in output


def test_a_chain_rehashed_with_a_guessed_key_is_noticed(app_ctx: Flask, session: Session) -> None:
    entries = _record(session, 3)
    session.commit()
    disable_append_only_triggers(session)
    target = entries[1].id
    session.execute(update(TABLE).where(TABLE.c.id == target).values(entity_id="9999"))
    # Keep the key id the entries name, but sign with a key the attacker made up.
    guessed = keys.AuditKey(keys.configured().current.id, b"guessed")
    _rehash_from(session, target, key=guessed)

    code, output = run_verify(app_ctx)

    assert code != 0
    assert f"entry {target}: content does not match its hash (altered)" in output


def test_a_rotated_key_keeps_older_entries_verifying(app_ctx: Flask, session: Session) -> None:
    # Arrange: entries signed with the first key, then the key rotated
    old_secret = app_ctx.config["AUDIT_KEY"]
    before = _record(session, 2)
    app_ctx.config.update(AUDIT_KEY="a-new-audit-key", AUDIT_OLD_KEYS=f" {old_secret} ")
    try:
        # Act
        after = _record(session, 2)
        session.commit()
        # Assert: both keys' entries verify, each names its own key
        assert {e.key_id for e in before} == {keys.key_id(old_secret)}
        assert {e.key_id for e in after} == {keys.key_id("a-new-audit-key")}
        _checkpoint(app_ctx)
        code, output = run_verify(app_ctx)
        assert code == 0, output
        # ... and a retired key dropped from the configuration is named, not silently skipped
        app_ctx.config["AUDIT_OLD_KEYS"] = ""
        code, output = run_verify(app_ctx)
        assert code != 0
        assert f"names key {keys.key_id(old_secret)}, which is not configured" in output
    finally:
        app_ctx.config.update(AUDIT_KEY=old_secret, AUDIT_OLD_KEYS="")


def test_entries_from_before_the_keyed_chain_still_verify(tmp_path: Path) -> None:
    # Arrange: a database at the last schema without key ids, with an unkeyed chain in it
    url = new_database(tmp_path, "legacy_audit")
    cfg = alembic_config(url)
    command.upgrade(cfg, "0009")
    app = create_app(app_config(url))
    with app.app_context():
        prev = chain.GENESIS
        legacy = [c for c in chain.CONTENT if c not in ("key_id", "mac")]
        with db.engine.begin() as conn:
            for n in range(3):
                row = {name: None for name in chain.CONTENT} | {
                    "occurred_at": utcnow(),
                    "action": AuditAction.VIEW,
                    "entity_type": "lab_result",
                    "entity_id": str(n),
                    "outcome": AuditOutcome.SUCCESS,
                    "detail": "{}",
                }
                content = chain.canonical_row(row)
                digest = hashlib.sha256((prev + "\n" + content).encode()).hexdigest()
                # Core names only these columns: the table has no key_id yet.
                values = {k: row[k] for k in legacy} | {"prev_hash": prev, "hash": digest}
                conn.execute(insert(TABLE).values(values))
                prev = digest
    # Act: the migration, then the keyed chain carries on from the old head
    command.upgrade(cfg, "head")
    with app.app_context():
        audit.record(db.session, None, AuditAction.VIEW, Entity.LAB_RESULT)
        db.session.commit()
        chain.seal(db.session)
        db.session.commit()
        count, problem = verify_checkpointed(db.session)
        kinds = list(db.session.scalars(select(AuditEvent.key_id).order_by(AuditEvent.id)))
    app.extensions["portal.db"]["engine"].dispose()
    # Assert
    assert problem is None, problem
    assert count == 4
    assert kinds == [None, None, None, keys.configured(app.config).current.id]


def test_a_damaged_checkpoint_file_fails_verification(app_ctx: Flask, session: Session) -> None:
    _record(session, 1)
    session.commit()
    _checkpoint(app_ctx)
    with (checkpoints.directory() / checkpoints.FILE_NAME).open("a") as file:
        file.write('{"position": "edited by hand"\n')

    code, output = run_verify(app_ctx)

    assert code != 0
    assert "line 2 is not a checkpoint" in output

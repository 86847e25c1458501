"""Checkpoints signed (Ed25519) and time-stamped (RFC 3161) outside the database: `audit
verify` checks both, against a local time-stamp authority (`openssl ts`), and fails on a
missing, altered, unsigned or un-time-stamped checkpoint (issue 21, point 4)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.orm import Session

from portal.audit import checkpoints, stamps
from tests.tsa import Authority, local_authority
from tests.unit.test_audit_chain import _record, run_verify, take_checkpoint


@pytest.fixture(scope="module")
def authority() -> Iterator[Authority]:
    with local_authority() as found:
        yield found


@pytest.fixture
def stamping(app_ctx: Flask, authority: Authority) -> Iterator[Flask]:
    app_ctx.config.update(TSA_URL=authority.url, AUDIT_TSA_CA_FILE=authority.ca_file)
    yield app_ctx
    app_ctx.config.update(TSA_URL="", AUDIT_TSA_CA_FILE="")


def _file() -> Path:
    return checkpoints.directory() / checkpoints.FILE_NAME


def _rewrite(change: dict[str, object | None]) -> None:
    """Edit the last checkpoint line as someone with write access to the sink would."""
    lines = _file().read_text().splitlines()
    data = json.loads(lines[-1]) | change
    data = {k: v for k, v in data.items() if v is not None}
    lines[-1] = json.dumps(data, sort_keys=True, separators=(",", ":"))
    _file().write_text("\n".join(lines) + "\n")


def test_verify_checks_a_signed_time_stamped_checkpoint(
    stamping: Flask, session: Session, authority: Authority
) -> None:
    # Arrange
    asked = len(authority.requests)
    _record(session, 2)
    session.commit()
    # Act
    take_checkpoint(stamping)
    code, output = run_verify(stamping)
    # Assert: signed, time-stamped by the authority, and both checked
    (line,) = checkpoints.read(checkpoints.directory())
    assert line.signature
    assert line.tsa
    assert len(authority.requests) == asked + 1
    keys = stamps.configured(stamping.config)
    assert keys.public is not None
    assert stamps.signature_ok(keys.public, line.payload(), line.signature)
    assert code == 0, output
    assert "intact" in output


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"at": "2020-01-01T00:00:00+00:00"}, "does not match its signature"),
        ({"signature": None}, "is unsigned"),
        ({"tsa": None}, "has no time-stamp"),
    ],
    ids=["altered", "unsigned", "not time-stamped"],
)
def test_verify_fails_on_a_tampered_checkpoint(
    stamping: Flask, session: Session, change: dict[str, object | None], said: str
) -> None:
    _record(session, 1)
    session.commit()
    take_checkpoint(stamping)
    _rewrite(change)

    code, output = run_verify(stamping)

    assert code != 0
    assert "Audit checkpoints untrusted" in output
    assert said in output


def test_verify_fails_on_another_checkpoints_time_stamp(
    stamping: Flask, session: Session, authority: Authority
) -> None:
    # A genuine token, but for other content: it does not vouch for this checkpoint
    _record(session, 1)
    session.commit()
    take_checkpoint(stamping)
    _rewrite({"tsa": stamps.timestamp(authority.url, b"another checkpoint")})

    code, output = run_verify(stamping)

    assert code != 0
    assert "has a time-stamp that fails" in output


def test_verify_fails_on_a_missing_checkpoint(stamping: Flask, session: Session) -> None:
    _record(session, 1)
    session.commit()
    take_checkpoint(stamping)
    _file().unlink()

    code, output = run_verify(stamping)

    assert code != 0
    assert "no checkpoint exists" in output


def test_no_checkpoint_is_written_when_the_authority_does_not_answer(
    app_ctx: Flask, session: Session
) -> None:
    _record(session, 1)
    session.commit()
    app_ctx.config["TSA_URL"] = "http://127.0.0.1:9/"  # discard: nothing listens
    try:
        result = app_ctx.test_cli_runner().invoke(args=["audit", "checkpoint"])
    finally:
        app_ctx.config["TSA_URL"] = ""
    assert result.exit_code != 0
    assert "not written: the time-stamp authority did not answer" in result.output
    assert not _file().exists()


@pytest.fixture
def no_lease() -> Iterator[None]:
    checkpoints.release_writer_lease()
    yield
    checkpoints.release_writer_lease()


def test_exactly_one_process_writes_checkpoints(
    app_ctx: Flask, session: Session, no_lease: None, caplog: pytest.LogCaptureFixture
) -> None:
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("several hosts share a PostgreSQL database; SQLite serves one host")
    _record(session, 1)
    session.commit()
    # Arrange: another host's worker is the writer (its own connection holds the lease)
    engine = session.get_bind().engine
    other = engine.connect()
    lock = "SELECT pg_try_advisory_lock(:k)"
    assert other.scalar(text(lock), {"k": checkpoints.WRITER_LOCK_KEY})
    other.commit()
    try:
        # Act / Assert: this process writes nothing, and says so
        with caplog.at_level(logging.ERROR, logger="portal.audit"):
            assert checkpoints.take(session) == 0
        assert "another process holds the writer lease" in caplog.text
        assert not _file().exists()
    finally:
        other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": checkpoints.WRITER_LOCK_KEY})
        other.commit()
        other.close()
    # ... until that writer is gone: then this one takes over
    assert checkpoints.take(session) == 1
    assert _file().exists()


def test_a_worker_not_named_the_writer_writes_no_checkpoint(
    app_ctx: Flask, session: Session
) -> None:
    _record(session, 1)
    session.commit()
    app_ctx.config["AUDIT_CHECKPOINT_WRITER"] = False
    try:
        assert checkpoints.take(session) == 0
    finally:
        app_ctx.config["AUDIT_CHECKPOINT_WRITER"] = True
    assert not _file().exists()

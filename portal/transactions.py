"""The one place a change commits: `unit_of_work()`.

Services add, change and flush; they never commit. A page, an API handler, a CLI command or
the audit read hook opens a unit of work around the service calls of one change, so the change,
its audit entries and its notifications commit together, or none of them does.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session
from werkzeug.exceptions import Conflict

from portal.extensions import db
from portal.services.errors import ServiceError, StorageFull

log = logging.getLogger(__name__)


class WriteOutsideUnitOfWork(RuntimeError):
    """Something changed rows outside `unit_of_work()`: it would commit with the next change."""


@contextmanager
def unit_of_work(session: Session | None = None) -> Iterator[Session]:
    """Run one change in its own transaction: commit on success, roll back on any error.

    On SQLite whatever the session read before is ended first (a read holds nothing worth
    keeping), and the change's transaction takes the write lock up front (`BEGIN IMMEDIATE`, see
    `portal.db`): concurrent writers queue for it instead of failing with "database is locked"
    when they first write after another one committed (a read transaction that then writes can
    fail so). On PostgreSQL the change carries on in the transaction the reads opened: under
    READ COMMITTED each statement sees every commit made before it starts, so nothing read
    earlier constrains it, and a request saves a COMMIT, a connection check-out (with its ping)
    and a BEGIN. A unique-key
    race (two identical requests at once on PostgreSQL) becomes a 409, never a 500. A
    `ServiceError` that carries a `record` (a denied entry, a counted failure) rolls the change
    back and then commits that record on its own before it is raised on. A database that
    cannot grow (disk full) rolls the whole change back and raises `StorageFull`.
    `session` is the app context's session unless given (jobs and threads without one).
    """
    session = session or db.session
    if session.new or session.dirty or session.deleted:
        raise WriteOutsideUnitOfWork("pending changes before a unit of work")
    if session.in_transaction() and session.get_bind().dialect.name != "postgresql":
        session.commit()
    if not session.in_transaction():
        session.connection(execution_options={"sqlite_begin_immediate": True})
    try:
        yield session
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        if is_unique_violation(exc):
            raise Conflict("That was just done. Please reload the page to see it.") from exc
        raise
    except ServiceError as exc:
        if exc.keep:
            session.commit()
            raise
        session.rollback()
        if exc.record is not None:
            _keep_refusal(session, exc.record)
        raise
    except OperationalError as exc:
        # SQLite may already have ended the whole transaction itself (it does when a large
        # row cannot get its pages); the rollback then only tidies the session.
        session.rollback()
        if is_storage_full(exc):
            log_storage_full(exc)
            raise StorageFull() from exc
        raise
    except BaseException:
        session.rollback()
        raise


def _keep_refusal(session: Session, record: Callable[[Session], None]) -> None:
    """Commit what a refusal carries (its audit entry, a counted failure) in a transaction of
    its own, after the refused change rolled back: a refusal is never lost with the change."""
    session.connection(execution_options={"sqlite_begin_immediate": True})
    try:
        record(session)
        session.commit()
    except BaseException:
        session.rollback()
        raise


def discard(session: Session | None = None) -> None:
    """End whatever a failed request left open, uncommitted: a flush that failed outside a
    unit of work (the session then refuses every statement until rolled back) or a PostgreSQL
    transaction an error aborted. The error page reads (its navigation, the badge), so it
    starts afresh; nothing the failed request wrote outside a unit of work is kept."""
    (session or db.session).rollback()


def is_unique_violation(exc: IntegrityError) -> bool:
    """A duplicate key (a race two identical requests ran), not a broken rule or a bug."""
    state = getattr(exc.orig, "sqlstate", None)  # psycopg: 23505 unique_violation
    return state == "23505" or "UNIQUE constraint failed" in str(exc.orig)


def is_storage_full(exc: BaseException) -> bool:
    """The database refused to grow: SQLite's SQLITE_FULL ("database or disk is full": the
    disk, or `PRAGMA max_page_count`), PostgreSQL's SQLSTATE 53100 `disk_full` ("could not
    extend file ...: No space left on device"). The one place either is recognised.

    Also when it hides behind what it caused: SQLite ends the whole transaction when a large
    row finds no room, so a savepoint rolled back after it (`messaging`'s) is gone and
    "no such savepoint" is what reaches the caller, with the full disk as its context."""
    return _storage_error(exc) is not None


def _storage_error(exc: BaseException) -> BaseException | None:
    seen: BaseException | None = exc
    for _ in range(5):  # a short chain: the error, and what failed while handling it
        if seen is None:
            return None
        orig = seen.orig if isinstance(seen, DBAPIError) else seen
        if getattr(orig, "sqlstate", None) == "53100":  # psycopg: errors.DiskFull
            return orig
        code = getattr(orig, "sqlite_errorcode", None)
        # The primary result code is the low byte of an extended one.
        if (
            isinstance(orig, sqlite3.Error)
            and code is not None
            and code & 0xFF == sqlite3.SQLITE_FULL
        ):
            return orig
        seen = seen.__cause__ or seen.__context__
    return None


def log_storage_full(exc: BaseException) -> None:
    """One line for the operator: what happened, never the statement or its values."""
    log.error(
        "storage full: the database could not grow (%s); the change was rolled back, "
        "nothing of it was saved. Free disk space for the database.",
        type(_storage_error(exc) or exc).__name__,
    )

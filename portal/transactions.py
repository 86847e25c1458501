"""The one place a change commits: `unit_of_work()`.

Services add, change and flush; they never commit. A page, an API handler, a CLI command or
the audit read hook opens a unit of work around the service calls of one change, so the change,
its audit entries and its notifications commit together, or none of them does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.exceptions import Conflict

from portal.extensions import db
from portal.services.errors import ServiceError


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
    back and then commits that record on its own before it is raised on.
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
        session.rollback()
        if exc.record is not None:
            _keep_refusal(session, exc.record)
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

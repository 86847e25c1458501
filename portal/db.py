"""The declarative base, column types and the per-request session."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from flask import Flask, current_app, g
from sqlalchemy import (
    DateTime,
    Engine,
    Enum,
    MetaData,
    String,
    create_engine,
    event,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, timezone-aware in UTC: the only clock the application reads (tests may patch it)."""
    return _clock()


def _system_clock() -> datetime:
    return datetime.now(UTC)


_clock: Callable[[], datetime] = _system_clock


def get_clock() -> Callable[[], datetime]:
    """The clock in use, to put back after pinning it for a while (`demo.at`)."""
    return _clock


def set_clock(clock: Callable[[], datetime] | None) -> None:
    """Replace the clock (tests); `None` restores the system clock."""
    global _clock
    _clock = clock or _system_clock


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC; refuses naive datetimes so no local time slips in."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _enum_values(e: type[enum.Enum]) -> list[str]:
    return [m.value for m in e]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: UTCDateTime(),
        enum.Enum: Enum(
            enum.Enum,
            native_enum=False,
            create_constraint=True,
            length=24,
            values_callable=_enum_values,
            validate_strings=True,
        ),
        str: String(255),
    }


intpk = Annotated[int, mapped_column(primary_key=True)]
created_at = Annotated[datetime, mapped_column(default=utcnow)]
updated_at = Annotated[datetime, mapped_column(default=utcnow, onupdate=utcnow)]


class Timestamps:
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings the portal relies on (foreign keys on SQLite, UTC on PG)."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
    else:
        kwargs.setdefault("pool_pre_ping", True)
        # Whatever the server's default: the audit chain's append reads the chain head after
        # taking its lock, in the transaction a request's reads opened (`unit_of_work`), so each
        # statement must see every commit made before it starts.
        kwargs.setdefault("isolation_level", "READ COMMITTED")
    # Database errors quote their statement's parameters, and tracebacks get logged: the
    # parameters are names, values and message bodies, so they never appear there.
    kwargs.setdefault("hide_parameters", True)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide where transactions begin: otherwise
            # SAVEPOINTs and read consistency are broken (SQLAlchemy's pysqlite notes).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # A transaction that will write no matter what (the audit read hook) asks for the
            # write lock up front: a deferred one that read first fails with SQLITE_BUSY when
            # another process committed meanwhile, instead of waiting its turn.
            immediate = conn.get_execution_options().get("sqlite_begin_immediate")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    else:

        @event.listens_for(engine, "connect")
        def _pg_utc(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("SET TIME ZONE 'UTC'")
            cur.close()
            dbapi_conn.commit()

        # Whether the transaction in progress may have written (see `finish`): anything but a
        # SELECT counts, so an unusual statement is rolled back, never committed by mistake.
        @event.listens_for(engine, "begin")
        def _nothing_written(conn: Any) -> None:
            conn.info[_WROTE] = False

        @event.listens_for(engine, "before_cursor_execute")
        def _note_write(conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
            if not statement.startswith("SELECT"):
                conn.info[_WROTE] = True

    return engine


_WROTE = "portal.wrote"


def finish(session: Session) -> None:
    """End what `session` has open and give its connection back to the pool.

    On PostgreSQL a transaction that only read ends with COMMIT rather than ROLLBACK: psycopg
    forgets every statement it prepared on the connection at each ROLLBACK (and sends
    DEALLOCATE ALL), so every statement of the next requests on it would be parsed and planned
    again (measured: a signed-in page's reads took 0.4-0.5 ms each instead of 0.15-0.2). For a
    transaction that wrote nothing the two end it alike. Pending objects, a flush or any
    statement but a SELECT since the transaction began, and a transaction an error left
    broken, are rolled back as before.
    """
    try:
        if (
            session.in_transaction()
            and not (session.new or session.dirty or session.deleted)
            and session.get_bind().dialect.name == "postgresql"
            and session.connection().info.get(_WROTE) is False
        ):
            session.commit()
    except Exception:  # noqa: S110  (a transaction that cannot commit is rolled back below)
        pass
    finally:
        session.close()


class Database:
    """One engine per app and one session per app context (request, CLI command, test)."""

    def init_app(self, app: Flask) -> None:
        engine = make_engine(app.config["DATABASE_URL"])
        app.extensions["portal.db"] = {
            "engine": engine,
            "sessionmaker": sessionmaker(bind=engine, expire_on_commit=False),
        }
        app.teardown_appcontext(self._close)

    @staticmethod
    def _close(exc: BaseException | None) -> None:
        session: Session | None = g.pop("_db_session", None)
        if session is None:
            return
        if exc is None:
            finish(session)
        else:
            session.close()

    @property
    def engine(self) -> Engine:
        return current_app.extensions["portal.db"]["engine"]

    @property
    def session(self) -> Session:
        if "_db_session" not in g:
            g._db_session = current_app.extensions["portal.db"]["sessionmaker"]()
        return g._db_session


__all__ = [
    "Base",
    "Database",
    "Timestamps",
    "UTCDateTime",
    "finish",
    "func",
    "get_clock",
    "set_clock",
    "utcnow",
]

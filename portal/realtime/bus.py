"""The event bus of one process: wakes the sockets whose users have new events.

The stored notifications are the stream; the bus only says *who* has something new. One
thread per process reads the ids and recipients committed since its cursor (an indexed range on
the primary key) and wakes those users' sockets, which then read their own events through the
scoped query (`notifications.events_after`). So an event raised in any process or host reaches
a socket held by any other, and nothing lives only in memory.

- SQLite (one host): the thread looks every `REALTIME_POLL_INTERVAL` (0.1 s).
- PostgreSQL: the thread waits on `LISTEN portal_events`; the change's transaction sends
  `pg_notify` (delivered only on commit), so it wakes at once. It still looks every
  `REALTIME_FALLBACK_POLL` seconds in case the listening connection dropped a notification.

The same thread re-checks the sessions behind the open sockets every
`REALTIME_RECHECK_INTERVAL`, all in one query (`sessions.still_valid`), and ends the sockets
whose session was signed out, timed out, or whose account was deactivated.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from sqlalchemy import Connection, Engine, Integer, bindparam, select
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.models import AuthMethod, Notification
from portal.services import notifications, sessions
from portal.web import identity

log = logging.getLogger(__name__)

_NEW = unscoped(
    select(Notification.id, Notification.user_id)
    .where(Notification.id > bindparam("cursor", type_=Integer))
    .order_by(Notification.id)
    .limit(1000),
    "event fan-out: which users to wake; ids only, each socket reads its own events scoped",
)


@dataclass(eq=False)
class Subscription:
    """One open socket: its user, the session it was opened with, and its wake-up call."""

    user_id: int
    session_id: int
    _wake: threading.Event = field(default_factory=threading.Event)
    ended: bool = False

    def wait(self, timeout: float) -> bool:
        """Sleep until there may be new events (True) or `timeout` passes (False)."""
        woke = self._wake.wait(timeout)
        if woke:
            # Cleared before the caller reads, so a wake-up arriving during that read stays
            # set for the next turn; clearing after a timeout could drop one.
            self._wake.clear()
        return woke

    def wake(self) -> None:
        self._wake.set()

    def end(self) -> None:
        self.ended = True
        self._wake.set()


class Bus:
    """Subscriptions of this process's sockets, and the thread that wakes them."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._subs: dict[int, set[Subscription]] = {}
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._stopping = threading.Event()

    def subscribe(self, user_id: int, session_id: int) -> Subscription:
        sub = Subscription(user_id, session_id)
        with self._lock:
            self._subs.setdefault(user_id, set()).add(sub)
            self._ensure_running()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.user_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.user_id]

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread (tests, and a server shutting down); open sockets are ended too."""
        self._stopping.set()
        with self._lock:
            for subs in self._subs.values():
                for sub in subs:
                    sub.end()
        if self._thread is not None:
            self._thread.join(timeout)

    # --- the thread ---------------------------------------------------------------------------

    def _ensure_running(self) -> None:
        # Started on first use in each process: a thread started before gunicorn forks its
        # workers would not exist in them.
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        # The starting position is read before the first subscriber reads its catch-up, so an
        # event committed in between is above it and wakes that subscriber.
        with self._engine().connect() as conn:
            cursor = notifications.latest_event_id(conn)
        self._pid = os.getpid()
        self._thread = threading.Thread(
            target=self._run, args=(cursor,), name="portal-event-bus", daemon=True
        )
        self._thread.start()

    def _engine(self) -> Engine:
        engine: Engine = self._app.extensions["portal.db"]["engine"]
        return engine

    def _run(self, cursor: int) -> None:
        with self._app.app_context():
            engine = self._engine()
            config = self._app.config
            postgres = engine.dialect.name == "postgresql"
            poll = config["REALTIME_FALLBACK_POLL" if postgres else "REALTIME_POLL_INTERVAL"]
            recheck_every = config["REALTIME_RECHECK_INTERVAL"]
            idle, absolute = identity.limits(AuthMethod.SESSION)
            wait = _Listener(engine, poll) if postgres else _Sleeper(poll, self._stopping)
            next_recheck = time.monotonic() + recheck_every
            while not self._stopping.is_set():
                try:
                    wait()
                    # A connection of its own each turn, given back (its transaction ended)
                    # when the block ends.
                    with engine.connect() as conn:
                        cursor = self._wake_new(conn, cursor)
                        if time.monotonic() >= next_recheck:
                            next_recheck = time.monotonic() + recheck_every
                            self._recheck(conn, idle=idle, absolute=absolute)
                except Exception:  # a database restart: keep serving, try again shortly
                    log.exception("event bus: reading new events failed; retrying")
                    self._stopping.wait(1.0)
            wait.close()

    def _wake_new(self, conn: Connection, cursor: int) -> int:
        while True:
            rows = conn.execute(_NEW, {"cursor": cursor}).all()
            if not rows:
                return cursor
            users = {user_id for _id, user_id in rows}
            cursor = rows[-1][0]
            with self._lock:
                woken = [sub for u in users for sub in self._subs.get(u, ())]
            for sub in woken:
                sub.wake()

    def _recheck(self, conn: Connection, **limits: Any) -> None:
        with self._lock:
            open_subs = [sub for subs in self._subs.values() for sub in subs]
        if not open_subs:
            return
        with Session(bind=conn) as s:
            valid = sessions.still_valid(s, {sub.session_id for sub in open_subs}, **limits)
        for sub in open_subs:
            if sub.session_id not in valid:
                sub.end()


class _Sleeper:
    """SQLite: look again after `interval`."""

    def __init__(self, interval: float, stopping: threading.Event) -> None:
        self._interval, self._stopping = interval, stopping

    def __call__(self) -> None:
        self._stopping.wait(self._interval)

    def close(self) -> None:
        pass


class _Listener:
    """PostgreSQL: wait for `NOTIFY portal_events`, or `fallback` seconds, on a connection of
    its own (held for the process's life, outside the pool)."""

    def __init__(self, engine: Any, fallback: float) -> None:
        self._engine, self._fallback = engine, fallback
        self._conn: Any = None

    def __call__(self) -> None:
        if self._conn is None or self._conn.closed:
            raw = self._engine.raw_connection()
            conn = raw.driver_connection
            raw.detach()
            conn.autocommit = True
            conn.execute(f"LISTEN {notifications.CHANNEL}")
            self._conn = conn
            return  # listening now: look once for what committed before it was
        try:
            for _ in self._conn.notifies(timeout=self._fallback, stop_after=1):
                pass
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

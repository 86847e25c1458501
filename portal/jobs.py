"""Background jobs: the work that runs on its own schedule, beside the web processes.

`flask --app wsgi worker` runs each job when it is due, for as long as it runs (`worker:` in
the `Procfile`; `make run` starts one); `flask --app wsgi jobs run-once` runs every job once,
for cron-style deployments and tests. Any number of workers may run: each run of a job is one
transaction that first claims the job (PostgreSQL: a transaction-scoped advisory lock per job,
`pg_try_advisory_xact_lock`, so a second worker skips a job another is running; SQLite: the
write lock taken at the start, so a second waits and then finds nothing left to do): two
workers never send one mail twice. Runs are
logged by job name and count: never a patient, a test or a value.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import text
from sqlalchemy.orm import Session

from portal.audit import chain, checkpoints
from portal.services import labs, mail, retention
from portal.transactions import unit_of_work

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[Session], int]

    @property
    def lock_key(self) -> int:
        """A stable advisory-lock key per job (the audit chain uses its own constant)."""
        return zlib.crc32(f"portal.jobs:{self.name}".encode())


def _send_mail(session: Session) -> int:
    config = current_app.config
    transport = mail.transport_from(config, current_app.instance_path)
    return mail.send_due(session, transport, config["MAIL_FROM"])


JOBS: tuple[Job, ...] = (
    # Entries are written unsealed (no page view waits for the chain's lock); this links and
    # signs them into the chain within about a second of their commit.
    Job("audit.seal", timedelta(seconds=1), lambda s: chain.seal(s, batch=5000)),
    Job("mail.outbox", timedelta(seconds=10), _send_mail),
    # A result due at 07:06 reaches the patient by 07:07 at the latest.
    Job("labs.release-due", timedelta(minutes=1), lambda s: labs.release_due(s)),
    Job("messages.purge", timedelta(hours=6), lambda s: retention.purge_messages(s)),
    # A tail cut from the audit log is noticed unless it was cut within the last minute.
    Job("audit.checkpoint", timedelta(minutes=1), checkpoints.take),
)

_CLAIM = text("SELECT pg_try_advisory_xact_lock(:key)")


def run(job: Job) -> int | None:
    """Run `job` once in its own transaction; None when another worker is running it now."""
    with unit_of_work() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        if postgres and not session.scalar(_CLAIM, {"key": job.lock_key}):
            return None
        done = job.run(session)
    # A run that did nothing is not news (the sealer runs every second).
    log.log(logging.INFO if done else logging.DEBUG, "job %s: %d done", job.name, done)
    return done


def run_once() -> dict[str, int | None]:
    """Every job once (cron, tests): what each did, None for one another worker had."""
    return {job.name: run(job) for job in JOBS}


def run_forever(stop: threading.Event | None = None, tick: float | None = None) -> None:
    """Run each job when it is due until `stop` is set; a failing run is logged and retried
    at its next turn, and never stops the others."""
    stop = stop or threading.Event()
    tick = tick or min(job.every.total_seconds() for job in JOBS)
    due = {job.name: time.monotonic() for job in JOBS}
    while not stop.is_set():
        for job in JOBS:
            if time.monotonic() < due[job.name]:
                continue
            due[job.name] = time.monotonic() + job.every.total_seconds()
            try:
                run(job)
            except Exception:
                # The engine hides SQL parameters, so the traceback names no patient data.
                log.exception("job %s failed; it runs again at its next turn", job.name)
        stop.wait(tick)

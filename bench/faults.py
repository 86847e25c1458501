"""Faults: the database crashes in the middle of writes and comes back (issue 13, point 6).

    scripts/with-postgres.sh .venv/bin/python bench/faults.py          # RUNS=3 WRITES=500

with-postgres.sh's cluster runs without durable commits (fsync and synchronous_commit off,
for the suite's speed): a crash would lose commits it had already acknowledged. So this script
first restarts that cluster with `fsync=on synchronous_commit=on full_page_writes=on` and shows
them. Then it serves the portal in the Procfile's layout (`tests.support.procfile_layout`,
with the jobs worker, which seals the audit entries, beside web and ws) and,
RUNS times: WRITERS threads send WRITES replies in one thread through the API (each with its
own `Idempotency-Key` and a unique marker in the body; a 503 is retried with the same key after
a short pause, as its `Retry-After` asks); half-way, the cluster is crashed
(`pg_ctl -m immediate stop`: no shutdown, crash recovery on start), kept down OUTAGE seconds
(while a signed-in page and an API read are fetched), and started again.

Per run it prints the writes acknowledged, the 503s (each checked: problem+json or the calm
page, `Retry-After`, no stack trace), any other answer (must be none), the time from the
database being back to the first write acknowledged (must be at most 10 s), and the checks that
nothing is partial: every write stored exactly once (retries included), every stored message
with its audit entry and every audit SEND entry with its message, every entry sealed by the
worker into an intact chain, the web workers the same processes (nothing restarted) and the jobs
worker still running. Exit status 1 if any check fails.

A full disk for attachments is not run: attachments are stored in the database (encrypted,
in `attachment.ciphertext`), so it is the database's disk filling up, which needs a small file
system mounted for the cluster (root and `mount`); a tmpfs or a read-only folder is not it.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
from sqlalchemy import create_engine, func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import (  # noqa: E402  (the repository root is put on the path first)
    ROOT,
    Layout,
    PostgresServer,
    app_config,
    bearer,
    procfile_layout,
    signed_in,
)

RUNS = int(os.environ.get("RUNS", "3"))
WRITES = int(os.environ.get("WRITES", "500"))
WRITERS = int(os.environ.get("WRITERS", "4"))
OUTAGE = float(os.environ.get("OUTAGE", "3"))
RETRY_PAUSE = 0.5  # seconds before a 503 is retried (Retry-After says 5; shortened to run fast)
RECOVERY_LIMIT = 10.0
DURABLE = " -c fsync=on -c synchronous_commit=on -c full_page_writes=on"


# --- The database server ------------------------------------------------------------------------


def pg_ctl(server: PostgresServer, *args: str) -> None:
    command = [server.ctl, "-D", server.data, "-w", "-t", "120", *args]
    if server.run_as:
        command = ["runuser", "-u", server.run_as, "--", *command]
    subprocess.run(command, check=True, cwd="/", capture_output=True)


def start(server: PostgresServer) -> None:
    pg_ctl(server, "-o", server.options, "-l", f"{server.data}/../server.log", "start")


def durable(server: PostgresServer, url: str) -> PostgresServer:
    """The same cluster restarted with durable commits (later `-c` settings win)."""
    pg_ctl(server, "-m", "fast", "stop")
    server = dataclasses.replace(server, options=server.options + DURABLE)
    start(server)
    engine = create_engine(url)
    with engine.connect() as conn:
        shown = {
            name: conn.execute(text(f"SHOW {name}")).scalar()
            for name in ("fsync", "synchronous_commit", "full_page_writes")
        }
        version = conn.execute(text("SHOW server_version")).scalar()
    engine.dispose()
    print(
        f"RESULT PostgreSQL {version}: " + ", ".join(f"{k}={v}" for k, v in shown.items()),
        flush=True,
    )
    assert set(shown.values()) == {"on"}, shown
    return server


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def failed_runs(self) -> int:
        """Job runs the worker logged as failed (each retried at its next turn)."""
        return self.log.read_text(errors="replace").count(" failed; it runs again")


@contextmanager
def procfile_worker(url: str, folder: Path) -> Iterator[Worker]:
    """The Procfile's `worker` on `url` (it seals the audit entries into the chain every
    second, sends the mail), with the keys `procfile_layout` gives web and ws; stopped at the
    end. Its log (no patient data: the engine hides SQL parameters) goes to `folder`."""
    config = app_config(url)
    names = ("SECRET_KEY", "ATTACHMENT_KEY", "TOTP_KEY", "AUDIT_KEY", "AUDIT_CHECKPOINT_DIR")
    env = {
        **os.environ,
        "PORTAL_ENV": "development",
        "DATABASE_URL": url,
        "MAIL_DIR": str(config["MAIL_DIR"]),
        **{name: str(config[name]) for name in names},
    }
    log = folder / "worker.log"
    flask = str(Path(sys.executable).with_name("flask"))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [flask, "--app", "wsgi", "worker"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        yield Worker(process, log)
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- One run: writers, a crash half-way, the checks -----------------------------------------------


@dataclass
class Run:
    number: int
    marker: str
    acknowledged: int = 0
    unavailable: int = 0
    others: Counter[str] = field(default_factory=Counter)
    bad_503: list[str] = field(default_factory=list)
    back_at: float | None = None
    first_after_back: float | None = None
    failures: list[str] = field(default_factory=list)
    during_outage: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


def write_all(
    base: str, headers: dict[str, str], thread_id: int, run: Run, half: threading.Event
) -> None:
    """WRITES replies over WRITERS threads, each retried after a 503 until acknowledged."""
    numbers = iter(range(WRITES))
    take = threading.Lock()

    def writer() -> None:
        while True:
            with take:
                n = next(numbers, None)
            if n is None:
                return
            key = uuid.uuid4().hex
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                sent = time.monotonic()
                try:
                    r = requests.post(
                        f"{base}/api/v1/conversations/{thread_id}/messages",
                        json={"body": f"{run.marker}{n:04d}"},
                        headers={**headers, "Idempotency-Key": key},
                        timeout=60,
                    )
                except requests.RequestException as exc:
                    with run.lock:
                        run.others[type(exc).__name__] += 1
                    time.sleep(RETRY_PAUSE)
                    continue
                if r.status_code == 201:
                    with run.lock:
                        run.acknowledged += 1
                        if run.acknowledged >= WRITES // 2:
                            half.set()
                        if run.back_at is not None and sent >= run.back_at:
                            answered = time.monotonic()
                            if run.first_after_back is None or answered < run.first_after_back:
                                run.first_after_back = answered
                    break
                with run.lock:
                    if r.status_code == 503:
                        run.unavailable += 1
                        if not (
                            r.headers.get("Content-Type", "").startswith("application/problem+json")
                            and r.headers.get("Retry-After")
                            and "Traceback" not in r.text
                        ):
                            run.bad_503.append(r.text[:200])
                    else:
                        run.others[str(r.status_code)] += 1
                time.sleep(RETRY_PAUSE)

    threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def outage_pages(base: str, page: requests.Session, headers: dict[str, str], run: Run) -> None:
    """What a person and an app see while the database is down: 503, calm, no stack trace."""
    site = page.get(base + "/my/", timeout=60)
    if not (
        site.status_code == 503
        and "briefly unavailable" in site.text
        and site.headers.get("Retry-After")
        and "Traceback" not in site.text
    ):
        run.failures.append(f"the site answered {site.status_code} during the outage")
    api = requests.get(base + "/api/v1/conversations", headers=headers, timeout=60)
    run.during_outage = f"site {site.status_code}, API {api.status_code}"
    if not (
        api.status_code == 503
        and api.headers.get("Content-Type", "").startswith("application/problem+json")
        and "Traceback" not in api.text
    ):
        run.failures.append(f"the API answered {api.status_code} during the outage")


def check_stored(url: str, run: Run) -> str:
    """Nothing partial: every write once, every message with its entry and the reverse, the
    chain intact. Returns the line to print."""
    from portal import create_app
    from portal.access import unscoped
    from portal.audit.chain import unsealed, verify
    from portal.extensions import db
    from portal.models import AuditAction, AuditEvent, Message

    app = create_app(app_config(url))
    with app.app_context():
        s = db.session
        bodies = Counter(
            s.scalars(
                unscoped(select(Message.body).where(Message.body.startswith(run.marker)), "bench")
            )
        )
        messages = set(s.scalars(unscoped(select(Message.id), "bench: every message")))
        audited = Counter(
            int(e)
            for e in s.scalars(
                select(AuditEvent.entity_id).where(
                    AuditEvent.action == AuditAction.SEND,
                    AuditEvent.entity_type == "message",
                )
            )
            if e is not None
        )
        entries = s.scalar(select(func.count()).select_from(AuditEvent))
        # The worker seals what was written (through the crash too) within seconds.
        began = time.monotonic()
        while (waiting := unsealed(s)) and time.monotonic() - began < 60:
            s.rollback()
            time.sleep(0.5)
        sealed_in = time.monotonic() - began
        checked, problem = verify(s, checkpoints=[])
    app.extensions["portal.bus"].stop()
    app.extensions["portal.db"]["engine"].dispose()
    expected = {f"{run.marker}{n:04d}" for n in range(WRITES)}
    missing = len(expected - set(bodies))
    twice = sum(1 for b, c in bodies.items() if c > 1)
    unaudited = len(messages - set(audited))
    orphans = len(set(audited) - messages)
    double_entries = sum(1 for c in audited.values() if c > 1)
    if missing or twice or len(set(bodies) - expected):
        run.failures.append(f"writes not stored exactly once: {missing} missing, {twice} twice")
    if unaudited or orphans or double_entries:
        run.failures.append(
            f"partial: {unaudited} messages without entry, {orphans} entries without message"
        )
    if problem is not None:
        run.failures.append(f"audit chain broken: {problem}")
    if waiting:
        run.failures.append(f"{waiting} audit entries still unsealed after 60 s")
    return (
        f"stored once {len(bodies) - twice}/{WRITES} (missing {missing}, twice {twice}); "
        f"messages without audit entry {unaudited}, SEND entries without message {orphans}, "
        f"messages with two entries {double_entries}; "
        + (f"all entries sealed (waited {sealed_in:.1f} s), " if not waiting else "NOT sealed, ")
        + f"audit chain {'intact' if problem is None else 'BROKEN'} "
        f"({checked} of {entries} entries)"
    )


def web_workers(layout: Layout, worker: Worker) -> set[int]:
    """The web gunicorn's workers: the master is this process's child that is neither the
    ws gunicorn nor the jobs worker."""

    def children(pid: int) -> set[int]:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        return {int(p) for p in out.split()}

    masters = children(os.getpid()) - {layout.ws_pid, worker.process.pid}
    return set().union(*(children(m) for m in masters))


def one_run(number: int, server: PostgresServer, layout: Layout, worker: Worker) -> Run:
    run = Run(number, f"faults-{uuid.uuid4().hex[:8]}-")
    base = layout.web
    failed_jobs = worker.failed_runs()
    headers = bearer(base, "alice@example.org")
    page = signed_in(base, "alice@example.org")
    [thread, *_] = requests.get(base + "/api/v1/conversations", headers=headers, timeout=60).json()[
        "items"
    ]
    workers = web_workers(layout, worker)
    assert workers, "the web gunicorn's workers were not found"
    half = threading.Event()
    writing = threading.Thread(target=write_all, args=(base, headers, thread["id"], run, half))
    began = time.monotonic()
    writing.start()
    half.wait(timeout=300)
    pg_ctl(server, "-m", "immediate", "stop")
    crashed_at = run.acknowledged
    down = time.monotonic()
    time.sleep(0.5)
    outage_pages(base, page, headers, run)
    time.sleep(max(0.0, OUTAGE - (time.monotonic() - down)))
    start(server)  # crash recovery, then accepting connections (pg_ctl -w)
    with run.lock:
        run.back_at = time.monotonic()
    writing.join()
    took = time.monotonic() - began
    stored = check_stored(layout.url, run)
    worker_alive = worker.process.poll() is None
    if not worker_alive:
        run.failures.append("the jobs worker exited")
    if web_workers(layout, worker) != workers:
        run.failures.append("a web worker was restarted")
    recovery = (
        run.first_after_back - run.back_at
        if run.first_after_back is not None and run.back_at is not None
        else None
    )
    if recovery is None or recovery > RECOVERY_LIMIT:
        run.failures.append(f"no write acknowledged within {RECOVERY_LIMIT:.0f} s of the restart")
    if run.others:
        run.failures.append(f"other answers: {dict(run.others)}")
    if run.bad_503:
        run.failures.append(f"{len(run.bad_503)} 503s without problem+json or Retry-After")
    print(
        f"RESULT run {number}: {WRITES} writes in {took:.1f} s, crash after {crashed_at} "
        f"acknowledged, database down {OUTAGE:.1f} s ({run.during_outage}); "
        f"acknowledged {run.acknowledged}, "
        f"503 {run.unavailable} (all problem+json with Retry-After: {not run.bad_503}), "
        f"other answers {sum(run.others.values())}"
        f"{' ' + str(dict(run.others)) if run.others else ''}; first write acknowledged "
        f"{'never' if recovery is None else f'{recovery:.2f} s'} after the database was back; "
        f"{stored}; web workers ({len(workers)}) restarted: "
        f"{'yes' if web_workers(layout, worker) != workers else 'no'}; jobs worker "
        f"{'running' if worker_alive else 'EXITED'} ({worker.failed_runs() - failed_jobs} job "
        "runs failed in the outage, each retried)"
        f" -> {'PASS' if not run.failures else 'FAIL: ' + '; '.join(run.failures)}",
        flush=True,
    )
    return run


def main() -> int:
    server = PostgresServer.from_environment()
    url = os.environ.get("TEST_DATABASE_URL")
    if server is None or url is None:
        print("faults: run under scripts/with-postgres.sh (it needs the server to crash)")
        return 2
    server = durable(server, url)
    with (
        tempfile.TemporaryDirectory(prefix="portal-faults-") as tmp,
        procfile_layout(Path(tmp), "faults") as layout,
        procfile_worker(layout.url, Path(tmp)) as worker,
    ):
        print(
            f"RESULT served as in the Procfile (web: gunicorn sync x2, ws, worker), {WRITERS} "
            "writers, "
            f"503s retried after {RETRY_PAUSE} s with the same Idempotency-Key",
            flush=True,
        )
        runs = [one_run(n, server, layout, worker) for n in range(1, RUNS + 1)]
    failed = [r.number for r in runs if r.failures]
    print(f"RESULT {'PASS' if not failed else f'FAIL in runs {failed}'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

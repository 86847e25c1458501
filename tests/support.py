"""Test databases: a fresh SQLite file, or a fresh database on the PostgreSQL server that
TEST_DATABASE_URL names (scripts/with-postgres.sh starts a throwaway one)."""

from __future__ import annotations

import email
import email.policy
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
from flask import Flask
from simple_websocket import Client
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Demo-Portal-2026!"


def sign_in_limits():  # type: ignore[no-untyped-def]
    """The configured default limits on failed sign-ins, for calling services directly."""
    from datetime import timedelta

    from portal.services.throttle import Limits

    minutes = timedelta(minutes=15)
    return Limits(per_account=5, per_address=20, window=minutes, longest=minutes)


CHEAP_ARGON2 = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


def postgres_server_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or None


def backend() -> str:
    return "postgresql" if postgres_server_url() else "sqlite"


def new_database(tmp: Path, label: str, *, kind: str | None = None) -> str:
    """The URL of a new, empty database of `kind` (default: the suite's backend)."""
    kind = kind or backend()
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'{label}.db'}"
    server = postgres_server_url()
    assert server, "TEST_DATABASE_URL is not set"
    name = f"t_{re.sub(r'[^a-z0-9_]', '_', label.lower())}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def app_config(url: str) -> dict[str, object]:
    return {
        "DATABASE_URL": url,
        "PORTAL_ENV": "test",
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "ATTACHMENT_KEY": "test-attachment-key-not-for-production",
        "TOTP_KEY": "test-totp-key-not-for-production",
        "AUDIT_KEY": "test-audit-key-not-for-production",
        "AUDIT_CHECKPOINT_KEY": "test-checkpoint-key-not-for-production",
        # Each app its own checkpoint folder (tests with a rolled-back transaction get their
        # own, see `connection`): a checkpoint of rows rolled back would read as a cut tail.
        "AUDIT_CHECKPOINT_DIR": tempfile.mkdtemp(prefix="portal-audit-"),
        "ARGON2_PARAMS": CHEAP_ARGON2,
        # Each app its own mail folder: the tests read the mail the portal sends there.
        "MAIL_DIR": tempfile.mkdtemp(prefix="portal-mail-"),
    }


def seeded_app(url: str) -> Flask:
    """The app on the database at `url`, migrated and seeded with the demo."""
    from portal import create_app, demo
    from portal.cli import upgrade_database
    from portal.extensions import db

    app = create_app(app_config(url))
    upgrade_database(app)
    with app.app_context():
        demo.seed(db.session)
    return app


@contextmanager
def served_app(tmp: Path, label: str) -> Iterator[tuple[Flask, str]]:
    """The app over real HTTP on a free loopback port, with its own migrated, demo-seeded
    database of the suite's kind: for what only a real server shows (concurrency, fuzzing)."""
    app = seeded_app(new_database(tmp, label))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        app.extensions["portal.bus"].stop()
        app.extensions["portal.db"]["engine"].dispose()


# --- Clients of a served app: a browser's session, an app's token, a page's socket -----------


def csrf_of(s: requests.Session, url: str) -> str:
    """The CSRF token of the page at `url`, read the way a browser gets it."""
    page = s.get(url, timeout=30).text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def signed_in(base: str, email: str) -> requests.Session:
    """A browser-like session signed in through the sign-in page."""
    s = requests.Session()
    token = csrf_of(s, base + "/login")
    r = s.post(
        base + "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 303, r.status_code
    return s


def bearer(base: str, email: str) -> dict[str, str]:
    """Headers with a fresh API token for `email`."""
    r = requests.post(
        base + "/api/v1/auth/token",
        json={"email": email, "password": PASSWORD, "client": "tests"},
        timeout=30,
    )
    assert r.status_code == 201, r.text[:300]
    return {"Authorization": f"Bearer {r.json()['token']}"}


class _Client(Client):
    """simple-websocket's client names the host without its port in `Host`; a browser
    names both, and the server compares `Origin` with it."""

    def handshake(self) -> None:
        self.host = f"{self.host}:{self.port}"
        super().handshake()


def open_socket(
    base: str,
    s: requests.Session | None,
    *,
    after: int | None = None,
    origin: str | None = None,
    pages: str | None = None,
) -> Client:
    """`/ws` as a page of `base` opens it: the session's cookie, the page's own origin, and
    the starting position the page was rendered with (so nothing committed between reading
    the page and opening the socket is missed). `pages`: where the page is read when `base`
    serves only the socket (the `ws:` process)."""
    if after is None and s is not None:
        page = s.get((pages or base) + "/", timeout=30).text
        found = re.search(r'<meta name="portal-events" content="[^"]*after=(\d+)', page)
        assert found, "no live-events position on the page"
        after = int(found.group(1))
    url = base.replace("http://", "ws://", 1) + "/ws" + ("" if after is None else f"?after={after}")
    headers = {"Origin": origin or base}
    if s is not None:
        headers["Cookie"] = "; ".join(f"{c.name}={c.value}" for c in s.cookies)
    return _Client(url, headers=headers)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gunicorn(
    env: dict[str, str], *args: str, app: str = "wsgi:app"
) -> tuple[subprocess.Popen[bytes], str]:
    """`gunicorn <app>` with `args` on a free loopback port, once it answers; the caller
    stops it. `env` configures the app (DATABASE_URL, secrets) as in production. A port taken
    between choosing it and binding it (another suite on the machine) means another try.
    `wsgi:ws_app` (the `ws:` process) answers the sign-in page with 404: that is its ready."""
    exe = str(Path(sys.executable).with_name("gunicorn"))
    ready = 404 if app == "wsgi:ws_app" else 200
    for _attempt in range(3):
        port = _free_port()
        command = [exe, "--no-control-socket", "-b", f"127.0.0.1:{port}", *args, app]
        process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if requests.get(base + "/login", timeout=2).status_code == ready:
                    return process, base
            except (requests.ConnectionError, requests.Timeout):
                # Listening before its workers have booted (slow on a busy machine): wait on.
                time.sleep(0.2)
        process.kill()
        process.wait(timeout=30)
    raise RuntimeError(f"gunicorn {args} did not start")


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str

    @property
    def text(self) -> str:
        return f"To: {self.to}\nSubject: {self.subject}\n\n{self.body}"


def mails_in(folder: Path) -> list[Mail]:
    """The mail the portal wrote to its mail folder, decoded as a mail client would (a long
    line arrives quoted-printable, with soft breaks that would hide words from a plain search)."""
    found = []
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(("plain",))
        assert body is not None
        found.append(Mail(str(message["To"]), str(message["Subject"]), body.get_content()))
    return found


GLUCOSE = {
    "testCode": "2345-7",
    "testName": "Glucose",
    "units": "mg/dL",
    "referenceRange": "70-99",
    "status": "final",
}


def publish(base: str, headers: dict[str, str], patient_id: int, **result: str) -> int:
    """A provider publishes a result through the API (a glucose unless `result` says what);
    returns its id."""
    r = requests.post(
        f"{base}/api/v1/patients/{patient_id}/lab-results",
        json={**GLUCOSE, "resultValue": "101", **result},
        headers=headers,
        timeout=30,
    )
    assert r.status_code == 201, r.text[:300]
    return int(r.json()["id"])


def patient_id_of(base: str, email: str) -> int:
    """The patient record id of the demo patient who signs in as `email`."""
    r = requests.get(base + "/api/v1/me", headers=bearer(base, email), timeout=30)
    return int(r.json()["patient"]["id"])


def all_at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run `calls` in threads released together; their results in order, or what any raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    failures: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = calls[i]()
        except BaseException as exc:  # reported below, in the test's own thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == []
    return results


def at_once(work: Callable[[], object], times: int) -> None:
    """Run `work` in `times` threads released together."""
    all_at_once([work] * times)


@dataclass(frozen=True)
class Layout:
    """The Procfile's processes on one database: `web` (pages, API) and `ws` (sockets)."""

    url: str
    web: str
    ws: str
    ws_pid: int


@contextmanager
def procfile_layout(tmp: Path, label: str, *ws_args: str) -> Iterator[Layout]:
    """gunicorn `web` (2 sync workers) and `ws` (1 threaded worker, `ws_args` added) on a new
    demo-seeded database of the suite's kind, configured from the environment as in
    production; stopped at the end."""
    url = new_database(tmp, label)
    seeded_app(url).extensions["portal.db"]["engine"].dispose()
    env = {
        **os.environ,
        "PORTAL_ENV": "development",
        "DATABASE_URL": url,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "ATTACHMENT_KEY": "test-attachment-key-not-for-production",
        "TOTP_KEY": "test-totp-key-not-for-production",
        # The seeding app's audit key (one chain), and a checkpoint folder of its own.
        "AUDIT_KEY": "test-audit-key-not-for-production",
        "AUDIT_CHECKPOINT_KEY": "test-checkpoint-key-not-for-production",
        "AUDIT_CHECKPOINT_DIR": tempfile.mkdtemp(prefix="portal-audit-"),
    }
    web, web_base = gunicorn(env, "-k", "sync", "-w", "2")
    ws, ws_base = gunicorn(
        env, "-k", "gthread", "-w", "1", "--threads", "50", *ws_args, app="wsgi:ws_app"
    )
    try:
        yield Layout(url, web_base, ws_base, ws.pid)
    finally:
        for process in (web, ws):
            process.terminate()
            process.wait(timeout=30)


# --- The PostgreSQL server itself (scripts/with-postgres.sh says how to reach it) -------------


@dataclass(frozen=True)
class PostgresServer:
    """Stop and start the throwaway PostgreSQL server the suite runs on: database outages."""

    ctl: str
    data: str
    options: str
    run_as: str | None

    @classmethod
    def from_environment(cls) -> PostgresServer | None:
        env = os.environ
        if "TEST_PG_CTL" not in env or not backend().startswith("postgresql"):
            return None
        return cls(
            env["TEST_PG_CTL"],
            env["TEST_PGDATA"],
            env["TEST_PG_OPTIONS"],
            env.get("TEST_PG_RUN_AS"),
        )

    def _ctl(self, *args: str) -> None:
        command = [self.ctl, "-D", self.data, "-w", "-t", "60", *args]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        subprocess.run(command, check=True, cwd="/", capture_output=True)

    def stop(self) -> None:
        """Connections cut, open transactions rolled back. Not a crash (`-m immediate`): this
        server runs with synchronous_commit off for speed, so a crash would also lose commits
        it had already acknowledged; bench/faults.py crashes a durable one."""
        self._ctl("-m", "fast", "stop")

    def start(self) -> None:
        self._ctl("-o", self.options, "-l", f"{self.data}/../server.log", "start")

"""Load: simulated patients and providers (locust) against the Procfile's layout, with live
sockets, then the checks of issue 13 point 5.

    scripts/with-postgres.sh .venv/bin/python bench/load.py                  # 100 users, 5 min
    scripts/with-postgres.sh .venv/bin/python bench/load.py --users 10 --duration 20   # smoke

(Without with-postgres.sh it runs on SQLite.) Starts gunicorn `web` and `ws` and the jobs
`worker` on a new demo-seeded database (`tests.support.procfile_layout`,
`bench.faults.procfile_worker`) and adds one account per simulated user
(a fifth of them providers, each with their own patients; every patient has a thread with their
provider), so no two users share a sign-in. Each user signs in through the sign-in page and
opens `/ws` on the `ws` process as the page does; then, with 1 to 3 s between steps:

- patients read their dashboard, results and a result, reply in their thread (the page's
  form, a unique marker in the body) and book an open slot with their provider (the API);
- providers read their patient list and a chart, publish a result (the API, the page's
  session and CSRF token) and reply in their patients' threads.

At the end (exit status 1 if any fails): no failed request (a booking that lost its slot to
another user at the same moment, 409, is counted apart: the right answer to a race; so is a
422 for a patient who already holds the most open online bookings, who then stops booking), p95 of
every request at most 500 ms, every acknowledged message stored exactly once (and none stored
that was not sent), and every socket got exactly the events the database holds for its user
since it opened, including one for each acknowledged reply and published result; and the
worker sealed every audit entry into an intact chain.
"""

# ruff: noqa: E402  (gevent must patch the standard library before any other import)

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse
import itertools
import json
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import gevent
import requests
from locust import HttpUser, between, task
from locust.env import Environment
from simple_websocket import Client, ConnectionClosed
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.faults import procfile_worker  # the repository root is put on the path first
from tests.support import (
    GLUCOSE,
    PASSWORD,
    Layout,
    app_config,
    open_socket,
    procfile_layout,
)

P95_LIMIT_MS = 500
RUN = uuid.uuid4().hex[:8]
MARK = f"load-{RUN}-"


# --- Accounts: one per simulated user ----------------------------------------------------------


@dataclass
class Account:
    email: str
    role: str  # "patient" or "provider"
    user_id: int
    patient_id: int | None = None  # a patient's own record
    provider_user_id: int | None = None  # a patient's provider
    conversation_id: int | None = None  # a patient's thread with their provider
    patients: list[int] = field(default_factory=list)  # a provider's patients


def seed_accounts(url: str, layout_url: str, patients: int, providers: int) -> list[Account]:
    """`providers` providers and `patients` activated patients spread over them, each patient
    with a thread with their provider: made through the services, as the demo is."""
    from portal import create_app
    from portal.access import Actor
    from portal.models import Role, User
    from portal.services import accounts, messaging
    from portal.transactions import unit_of_work

    app = create_app(app_config(url))
    made: list[Account] = []
    with app.app_context(), unit_of_work() as s:
        admin = s.scalar(select(User).where(User.email == "admin@example.org"))
        assert admin is not None
        boss = Actor.of(admin)
        staff = []
        for j in range(providers):
            # Made by the operator, as the demo's providers are: an admin's own recruits
            # join a care team only once a second admin confirms.
            user, _ = accounts.create_staff(
                s,
                None,
                email=f"load-dr{j}@example.org",
                role=Role.PROVIDER,
                display_name=f"Dr Load {j}",
                specialty="Family medicine",
                clinic="Load Clinic",
                password=PASSWORD,
            )
            s.flush()
            s.refresh(user)
            staff.append((user, Account(user.email, "provider", user.id)))
        for i in range(patients):
            doctor, doctor_account = staff[i % providers]
            born = date(1950 + i % 50, 1 + i % 12, 1 + i % 28)
            email = f"load-p{i}@example.org"
            patient = accounts.register_patient(
                s,
                boss,
                medical_record_number=f"LOAD-{i:06d}",
                display_name=f"Load Patient {i}",
                date_of_birth=born,
                primary_clinic="Load Clinic",
                contact_email=email,
            )
            code = accounts.issue_activation_code(s, boss, patient, portal_url=layout_url)
            user = accounts.activate_patient(
                s, code=code, email=email, password=PASSWORD, date_of_birth=born
            )
            assert doctor.provider is not None
            accounts.assign_provider(s, boss, patient_id=patient.id, provider_id=doctor.provider.id)
            first = messaging.start_conversation(
                s,
                Actor(user.id, Role.PATIENT, patient_id=patient.id),
                patient_id=patient.id,
                recipient_user_id=doctor.id,
                subject="Questions between visits",
                body="Hello, a thread for the load test.",
            )
            doctor_account.patients.append(patient.id)
            made.append(
                Account(email, "patient", user.id, patient.id, doctor.id, first.conversation_id)
            )
        made.extend(account for _user, account in staff)
    app.extensions["portal.bus"].stop()
    app.extensions["portal.db"]["engine"].dispose()
    return made


# --- What the users did and saw ------------------------------------------------------------------


@dataclass
class Tally:
    sent: dict[str, bool] = field(default_factory=dict)  # marker -> acknowledged
    #: (user id, event type, entity id) each acknowledged change must reach, with counts.
    expected: Counter[tuple[int, str, int]] = field(default_factory=Counter)
    slot_races: int = 0
    #: Bookings refused because the patient already holds the most open online bookings
    #: allowed (a 422 naming the limit): the rule's answer, after which they stop booking.
    at_limit: int = 0
    sockets: list[Listener] = field(default_factory=list)
    #: Users whose socket is open: a change made before it opened is not theirs to get live.
    listening: set[int] = field(default_factory=set)

    def expect(self, listening: bool, user: int, kind: str, entity: int) -> None:
        if listening:
            self.expected[(user, kind, entity)] += 1


TALLY = Tally()
LAYOUT: Layout | None = None
PATIENTS: list[Account] = []
PROVIDERS: list[Account] = []
_next_patient = itertools.count()
_next_provider = itertools.count()


class Listener:
    """A page's socket on the `ws` process: every event it gets, reconnecting from the last
    one as the page does if the server closes it."""

    def __init__(
        self, account: Account, ws_base: str, client: requests.Session, after: int
    ) -> None:
        self.account = account
        self.ws_base = ws_base
        self.client = client
        self.after = after
        self.events: list[dict[str, object]] = []
        self.problems: list[str] = []
        self.reconnects = 0
        self.running = True
        self.sock = self._open(after)
        self.greenlet = gevent.spawn(self._listen)

    def _open(self, after: int) -> Client:
        return open_socket(self.ws_base, self.client, after=after)

    def _listen(self) -> None:
        while self.running:
            try:
                raw = self.sock.receive(timeout=1)
            except ConnectionClosed:
                if not self.running:
                    return
                self.reconnects += 1
                last = int(self.events[-1]["eventId"]) if self.events else self.after  # type: ignore[call-overload]
                self.sock = self._open(last)
                continue
            if raw is None:
                continue
            event = json.loads(raw)
            if event.get("type") == "reload":
                self.problems.append("told to reload (more than 100 events missed)")
                continue
            self.events.append(event)

    def close(self) -> None:
        self.running = False
        self.greenlet.join(timeout=5)
        self.sock.close()


def _csrf(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    return found.group(1) if found else ""


def _hidden(html: str, name: str) -> str | None:
    found = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html)
    return found.group(1) if found else None


class PortalUser(HttpUser):
    abstract = True
    wait_time = between(1, 3)
    account: Account
    csrf = ""

    def sign_in(self, landing: str) -> None:
        page = self.client.get("/login", name="/login")
        r = self.client.post(
            "/login",
            data={
                "email": self.account.email,
                "password": PASSWORD,
                "csrf_token": _csrf(page.text),
            },
            allow_redirects=False,
            name="/login",
        )
        assert r.status_code == 303, r.status_code
        home = self.client.get(landing, name=landing)
        self.csrf = _csrf(home.text)
        found = re.search(r'<meta name="portal-events" content="[^"]*after=(\d+)', home.text)
        assert LAYOUT is not None
        assert found is not None
        TALLY.sockets.append(Listener(self.account, LAYOUT.ws, self.client, int(found.group(1))))
        TALLY.listening.add(self.account.user_id)

    def reply(self, thread_url: str, recipient: int, conversation_id: int) -> None:
        page = self.client.get(thread_url, name=re.sub(r"\d+", "<id>", thread_url))
        marker = f"{MARK}{uuid.uuid4().hex}"
        data = {"csrf_token": _csrf(page.text), "body": f"Reply {marker}"}
        key = _hidden(page.text, "idempotency_key")
        if key:
            data["idempotency_key"] = key
        TALLY.sent[marker] = False
        listening = recipient in TALLY.listening
        with self.client.post(
            thread_url + "/reply",
            data=data,
            allow_redirects=False,
            catch_response=True,
            name=re.sub(r"\d+", "<id>", thread_url) + "/reply",
        ) as r:
            if r.status_code == 303:
                TALLY.sent[marker] = True
                TALLY.expect(listening, recipient, "message.created", conversation_id)
            else:
                r.failure(f"reply answered {r.status_code}")


class Patient(PortalUser):
    def on_start(self) -> None:
        self.account = PATIENTS[next(_next_patient) % len(PATIENTS)]
        self.sign_in("/my/")

    @task(4)
    def dashboard(self) -> None:
        self.client.get("/my/", name="/my/")

    @task(3)
    def results(self) -> None:
        page = self.client.get("/my/lab-results", name="/my/lab-results")
        ids = re.findall(r'href="/my/lab-results/(\d+)"', page.text)
        if ids:
            self.client.get(f"/my/lab-results/{random.choice(ids)}", name="/my/lab-results/<id>")

    @task(2)
    def reply_to_provider(self) -> None:
        a = self.account
        assert a.conversation_id is not None
        assert a.provider_user_id is not None
        self.reply(f"/my/messages/{a.conversation_id}", a.provider_user_id, a.conversation_id)

    @task(1)
    def book(self) -> None:
        a = self.account
        if getattr(self, "at_booking_limit", False):
            return  # as a patient who read the limit would: no more online bookings
        start = datetime.now(UTC).date() + timedelta(days=random.randint(1, 20))
        slots = self.client.get(
            f"/api/v1/providers/{a.provider_user_id}/slots",
            params={"from": start.isoformat(), "to": (start + timedelta(days=7)).isoformat()},
            name="/api/v1/providers/<id>/slots",
        ).json()["items"]
        if not slots:
            return
        with self.client.post(
            "/api/v1/appointments",
            json={
                "providerId": a.provider_user_id,
                "startAt": random.choice(slots)["startAt"],
                "reason": "Load test visit",
            },
            headers={"X-CSRFToken": self.csrf},
            catch_response=True,
            name="/api/v1/appointments",
        ) as r:
            if r.status_code == 409:  # another patient took the slot at the same moment
                TALLY.slot_races += 1
                r.success()
            elif r.status_code == 422 and "booked online" in r.text:
                TALLY.at_limit += 1
                self.at_booking_limit = True
                r.success()
            elif r.status_code != 201:
                r.failure(f"booking answered {r.status_code}: {r.text[:200]}")


class Provider(PortalUser):
    def on_start(self) -> None:
        self.account = PROVIDERS[next(_next_provider) % len(PROVIDERS)]
        self.sign_in("/staff/patients")

    @task(2)
    def patient_list(self) -> None:
        self.client.get("/staff/patients", name="/staff/patients")

    @task(3)
    def chart(self) -> None:
        pid = random.choice(self.account.patients)
        self.client.get(f"/staff/patients/{pid}", name="/staff/patients/<id>")

    @task(2)
    def publish(self) -> None:
        pid = random.choice(self.account.patients)
        owner = next(p for p in PATIENTS if p.patient_id == pid)
        listening = owner.user_id in TALLY.listening
        with self.client.post(
            f"/api/v1/patients/{pid}/lab-results",
            json={**GLUCOSE, "resultValue": str(random.randint(70, 130))},
            headers={"X-CSRFToken": self.csrf},
            catch_response=True,
            name="/api/v1/patients/<id>/lab-results",
        ) as r:
            if r.status_code != 201:
                r.failure(f"publish answered {r.status_code}: {r.text[:200]}")
                return
        TALLY.expect(listening, owner.user_id, "lab_result.published", int(r.json()["id"]))

    @task(2)
    def reply_to_patient(self) -> None:
        pid = random.choice(self.account.patients)
        owner = next(p for p in PATIENTS if p.patient_id == pid)
        assert owner.conversation_id is not None
        self.reply(f"/staff/messages/{owner.conversation_id}", owner.user_id, owner.conversation_id)


# --- The checks ---------------------------------------------------------------------------------


def stored_messages(url: str) -> Counter[str]:
    """How many rows hold each marker this run sent."""
    from portal import create_app
    from portal.access import unscoped
    from portal.extensions import db
    from portal.models import Message

    app = create_app(app_config(url))
    with app.app_context():
        bodies = db.session.scalars(
            unscoped(select(Message.body).where(Message.body.contains(MARK)), "bench: markers")
        )
        found = Counter(m.group(0) for b in bodies for m in re.finditer(MARK + r"[0-9a-f]{32}", b))
    app.extensions["portal.bus"].stop()
    app.extensions["portal.db"]["engine"].dispose()
    return found


def stored_events(url: str, sockets: list[Listener]) -> dict[int, list[int]]:
    """Each socket user's event ids in the database since their socket's starting position."""
    from portal import create_app
    from portal.access import unscoped
    from portal.extensions import db
    from portal.models import Notification

    app = create_app(app_config(url))
    out: dict[int, list[int]] = {}
    with app.app_context():
        for listener in sockets:
            stmt = select(Notification.id).where(
                Notification.user_id == listener.account.user_id,
                Notification.id > listener.after,
            )
            ids = db.session.scalars(unscoped(stmt, "bench: events to compare"))
            out[listener.account.user_id] = sorted(ids)
    app.extensions["portal.bus"].stop()
    app.extensions["portal.db"]["engine"].dispose()
    return out


def sealed_chain(url: str) -> tuple[int, float, int, object]:
    """Entries left unsealed once the worker has had up to 30 s, the seconds waited, and the
    chain's verification (entries checked, first break or None)."""
    from portal import create_app
    from portal.audit.chain import unsealed, verify
    from portal.extensions import db

    app = create_app(app_config(url))
    began = time.monotonic()
    with app.app_context():
        while (waiting := unsealed(db.session)) and time.monotonic() - began < 30:
            db.session.rollback()
            time.sleep(0.5)
        waited = time.monotonic() - began
        checked, problem = verify(db.session, checkpoints=[])
    app.extensions["portal.bus"].stop()
    app.extensions["portal.db"]["engine"].dispose()
    return waiting, waited, checked, problem


def print_table(env: Environment) -> None:
    """Per request kind: count, failures, p50, p95, max (ms), for docs/benchmarks.md."""
    print(f"{'request':<48} {'count':>7} {'failed':>6} {'p50':>6} {'p95':>6} {'max':>6}")
    for (name, method), entry in sorted(env.stats.entries.items()):
        print(
            f"{method + ' ' + name:<48} {entry.num_requests:>7} {entry.num_failures:>6} "
            f"{entry.get_response_time_percentile(0.5):>6.0f} "
            f"{entry.get_response_time_percentile(0.95):>6.0f} {entry.max_response_time:>6.0f}"
        )


def check(env: Environment, url: str) -> list[str]:
    failures: list[str] = []
    total = env.stats.total
    p95 = total.get_response_time_percentile(0.95)
    print(
        f"RESULT requests {total.num_requests}, failed {total.num_failures}, "
        f"{total.total_rps:.1f} req/s, p50 {total.get_response_time_percentile(0.5):.0f} ms, "
        f"p95 {p95:.0f} ms, p99 {total.get_response_time_percentile(0.99):.0f} ms, "
        f"max {total.max_response_time:.0f} ms; booking races (409) {TALLY.slot_races}, "
        f"bookings refused at the open-booking limit (422) {TALLY.at_limit}"
    )
    if total.num_failures:
        failures.append(f"{total.num_failures} failed requests")
        for error in env.stats.errors.values():
            print(f"  error x{error.occurrences}: {error.method} {error.name}: {error.error}")
    # An exception in a user's code (a sign-in refused, a page without its CSRF token) is no
    # request failure to locust: counted here.
    assert env.runner is not None
    for crash in env.runner.exceptions.values():
        print(f"  exception x{crash['count']}: {crash['msg']}")
        failures.append(f"{crash['count']} exceptions in the simulated users")
    if p95 > P95_LIMIT_MS:
        failures.append(f"p95 {p95:.0f} ms > {P95_LIMIT_MS} ms")

    stored = stored_messages(url)
    acknowledged = [m for m, ok in TALLY.sent.items() if ok]
    twice = [m for m in TALLY.sent if stored[m] > 1]
    lost = [m for m in acknowledged if stored[m] != 1]
    strays = [m for m in stored if m not in TALLY.sent]
    print(
        f"RESULT messages sent {len(TALLY.sent)}, acknowledged {len(acknowledged)}, "
        f"stored once {sum(1 for m in TALLY.sent if stored[m] == 1)}, stored twice or more "
        f"{len(twice)}, acknowledged but not stored {len(lost)}, "
        f"stored but never sent {len(strays)}"
    )
    if twice or lost or strays:
        failures.append("messages not stored exactly once")

    in_db = stored_events(url, TALLY.sockets)
    received = Counter[tuple[int, str, int]]()
    missing = duplicated = extra = problems = reconnects = 0
    for listener in TALLY.sockets:
        user = listener.account.user_id
        got = [int(e["eventId"]) for e in listener.events]  # type: ignore[call-overload]
        duplicated += len(got) - len(set(got))
        missing += len(set(in_db[user]) - set(got))
        extra += len(set(got) - set(in_db[user]))
        problems += len(listener.problems)
        reconnects += listener.reconnects
        for e in listener.events:
            received[(user, str(e["type"]), int(e["id"]))] += 1  # type: ignore[call-overload]
    not_arrived = TALLY.expected - received
    unmet = sum(not_arrived.values())
    for (user, kind, entity), times in list(not_arrived.items())[:5]:
        print(f"  not arrived x{times}: {kind} {entity} for user {user}")
    delivered = sum(len(s.events) for s in TALLY.sockets)
    print(
        f"RESULT sockets {len(TALLY.sockets)}, events in the database "
        f"{sum(map(len, in_db.values()))}, delivered {delivered}, missing {missing}, duplicated "
        f"{duplicated}, not theirs {extra}, reloads {problems}, reconnects {reconnects}; "
        f"acknowledged changes {sum(TALLY.expected.values())} whose event did not arrive {unmet}"
    )
    if missing or duplicated or extra or problems or unmet:
        failures.append("events not delivered exactly once to the sockets that should get them")

    waiting, waited, checked, problem = sealed_chain(url)
    print(
        f"RESULT audit: {'every entry sealed' if not waiting else f'{waiting} entries unsealed'}"
        f" {waited:.1f} s after the run, chain {'intact' if problem is None else problem}"
        f" ({checked} entries)"
    )
    if waiting or problem is not None:
        failures.append("audit entries unsealed or the chain broken")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100, help="simulated users (default 100)")
    parser.add_argument("--duration", type=int, default=300, help="seconds (default 300)")
    parser.add_argument(
        "--spawn-rate", type=float, default=None, help="users started per second (users/20)"
    )
    args = parser.parse_args()
    providers = max(1, args.users // 5)
    patients = max(1, args.users - providers)
    global LAYOUT
    # The Procfile's ws line: many threads, no keep-alive.
    with (
        tempfile.TemporaryDirectory(prefix="portal-load-") as tmp,
        procfile_layout(Path(tmp), "load", "--threads", "1000", "--keep-alive", "0") as layout,
        procfile_worker(layout.url, Path(tmp)),
    ):
        LAYOUT = layout
        backend = "PostgreSQL" if layout.url.startswith("postgresql") else "SQLite"
        started = time.monotonic()
        accounts = seed_accounts(layout.url, layout.web, patients, providers)
        PATIENTS.extend(a for a in accounts if a.role == "patient")
        PROVIDERS.extend(a for a in accounts if a.role == "provider")
        print(
            f"load: {backend}, {patients} patients and {providers} providers seeded in "
            f"{time.monotonic() - started:.0f} s; {args.users} users for {args.duration} s",
            file=sys.stderr,
        )
        Patient.fixed_count = patients
        Provider.fixed_count = providers
        # At the end each user finishes the step it is in: no request is cut off half-way.
        env = Environment(user_classes=[Patient, Provider], host=layout.web, stop_timeout=30)
        runner = env.create_local_runner()
        runner.start(args.users, spawn_rate=args.spawn_rate or max(1.0, args.users / 20))
        gevent.spawn_later(args.duration, runner.quit)
        runner.greenlet.join()
        time.sleep(3)  # the last changes' events reach their sockets
        for listener in TALLY.sockets:
            listener.close()
        print_table(env)
        print(
            f"RESULT {backend} load: {args.users} users ({patients} patients, {providers} "
            f"providers) for {args.duration} s, 1-3 s between steps, web, ws and worker as in "
            "the Procfile (tests.support.procfile_layout, bench.faults.procfile_worker)"
        )
        failures = check(env, layout.url)
    print("RESULT " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

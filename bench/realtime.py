"""Live events under the Procfile's layout: delivery latency, idle sockets, and what they cost
the pages.

    .venv/bin/python bench/realtime.py                                  # SQLite
    scripts/with-postgres.sh .venv/bin/python bench/realtime.py          # PostgreSQL

Starts gunicorn `web` (2 sync workers) and `ws` (1 threaded worker) on one demo-seeded
database, then:

1. latency: 200 times, dr.chen publishes a result for Alice through the API on `web`; the
   time from sending that request to Alice's socket on `ws` receiving the event (p50, p95),
   and from the API's answer to the event;
2. idle sockets: the `ws` worker's resident memory before and after opening SOCKETS (1,000)
   idle sockets;
3. pages: `wrk -t2 -c16 -d10s` on `/my/lab-results` (web) without and with those sockets
   open, alternating for ROUNDS (3) rounds.

Knobs: EVENTS=200 SOCKETS=1000 DURATION=10s ROUNDS=3. Needs `wrk`. Loopback only.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import (  # noqa: E402  (the repository root is put on the path first)
    Layout,
    bearer,
    open_socket,
    patient_id_of,
    procfile_layout,
    publish,
    signed_in,
)

EVENTS = int(os.environ.get("EVENTS", "200"))
SOCKETS = int(os.environ.get("SOCKETS", "1000"))
DURATION = os.environ.get("DURATION", "10s")
ROUNDS = int(os.environ.get("ROUNDS", "3"))


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) if match else 0


def worker_of(master: int) -> int:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return int(out.split()[0])


def wrk(url: str, cookie: str) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{DURATION}", "-H", f"Cookie: {cookie}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert non2xx is None, out
    return float(match.group(1))


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, SOCKETS * 3 + 1024), hard))
    layout = procfile_layout(
        Path(tempfile.mkdtemp(prefix="portal-rt-")),
        "realtime",
        "--threads",
        str(SOCKETS + 100),
        "--keep-alive",
        "0",
    )
    with layout as processes:
        measure(processes)


def measure(processes: Layout) -> None:
    web_base, ws_base = processes.web, processes.ws
    backend = "PostgreSQL" if processes.url.startswith("postgresql") else "SQLite"
    alice = signed_in(web_base, "alice@example.org")
    chen = bearer(web_base, "dr.chen@example.org")
    patient_id = patient_id_of(web_base, "alice@example.org")
    sock = open_socket(ws_base, alice, pages=web_base)
    total, after_answer = [], []
    for n in range(EVENTS):
        # Changes come at random moments, not in step with the SQLite poll.
        time.sleep(random.uniform(0, 0.1))
        started = time.perf_counter()
        result_id = publish(web_base, chen, patient_id, resultValue=str(80 + n % 40))
        answered = time.perf_counter()
        raw = sock.receive(timeout=10)
        arrived = time.perf_counter()
        assert raw is not None
        assert json.loads(raw)["id"] == result_id, raw
        total.append((arrived - started) * 1000)
        after_answer.append((arrived - answered) * 1000)
    sock.close()

    def pct(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1]

    print(
        f"RESULT {backend} latency publish->socket over {EVENTS}: "
        f"p50 {pct(total, 50):.1f} ms p95 {pct(total, 95):.1f} ms; "
        f"after the API's answer p50 {pct(after_answer, 50):.1f} ms "
        f"p95 {pct(after_answer, 95):.1f} ms"
    )

    worker = worker_of(processes.ws_pid)
    page = web_base + "/my/lab-results"
    cookie = "; ".join(f"{c.name}={c.value}" for c in alice.cookies)
    # Alternate without and with the sockets, so background load hits both alike.
    without, with_open, rss = [], [], []
    for _round in range(ROUNDS):
        without.append(wrk(page, cookie))
        before_rss = rss_kib(worker)
        idle = [open_socket(ws_base, alice, pages=web_base) for _ in range(SOCKETS)]
        time.sleep(3)  # the bus re-checks them at least once
        rss.append((before_rss, rss_kib(worker)))
        with_open.append(wrk(page, cookie))
        for s in idle:
            s.close()
        time.sleep(3)
    before_rss, held_rss = rss[0]  # the first opening: later ones reuse freed memory
    print(
        f"RESULT {backend} {SOCKETS} idle sockets in one ws worker: RSS {before_rss / 1024:.1f}"
        f" -> {held_rss / 1024:.1f} MiB ({(held_rss - before_rss) / SOCKETS:.0f} KiB each)"
    )
    quiet, loaded = statistics.mean(without), statistics.mean(with_open)
    print(
        f"RESULT {backend} /my/lab-results req/s over {ROUNDS} alternating rounds: without"
        f" sockets {quiet:.1f} ({', '.join(f'{x:.0f}' for x in without)}), with {SOCKETS}"
        f" open {loaded:.1f} ({', '.join(f'{x:.0f}' for x in with_open)}):"
        f" {loaded / quiet:.2f}x"
    )


if __name__ == "__main__":
    main()

"""Per-request cost of pages, in process (Flask test client), with statement counts.

Complements bench/run.sh (which measures throughput over HTTP): this one tells where a single
request's time goes. Uses the database in DATABASE_URL, which must already be upgraded and
seeded (`flask --app wsgi db upgrade && flask --app wsgi demo seed --patients 2000
--labs-per-patient 50`).

    DATABASE_URL=sqlite:////tmp/bench.db python bench/inprocess.py            # ms per request
    DATABASE_URL=... python bench/inprocess.py --profile /my/lab-results      # cProfile top 40
    python bench/inprocess.py --email dr.chen@example.org /staff/patients
    python bench/inprocess.py --bearer TOKEN /api/v1/patients/5/lab-results?limit=50   # the API
    python bench/inprocess.py --time portal.services.labs:latest_page ...   # ms inside it
    python bench/inprocess.py --explain /staff/patients    # PostgreSQL: each SELECT's plan
    (with -v on PostgreSQL: how often each prepared statement was planned afresh or reused)

Knobs: --requests N (default 300 per page after 30 warm-up requests), --email.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import importlib
import pstats
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path.cwd()))

from sqlalchemy import event  # noqa: E402

from portal import create_app  # noqa: E402

PASSWORD = "Demo-Portal-2026!"  # noqa: S105  (every demo account's password, public in the README)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", default=["/my/", "/my/lab-results"])
    parser.add_argument("--email", default="alice@example.org")
    parser.add_argument("--bearer", help="send this API token instead of signing in")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumulative)")
    parser.add_argument("--callers", help="with --profile: who calls the functions matching this")
    parser.add_argument("--callees", help="with --profile: what the functions matching this call")
    parser.add_argument("--floor", action="store_true", help="serve bench/floor_app.py's app")
    parser.add_argument("--dump", type=Path, help="write each page's HTML into this folder")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the statements")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="PostgreSQL: EXPLAIN ANALYZE each SELECT of a request",
    )
    parser.add_argument(
        "--time",
        action="append",
        default=[],
        metavar="MODULE:FUNCTION",
        help="also report the median ms per request spent inside this function (repeatable)",
    )
    args = parser.parse_args()

    if args.floor:  # the portal's app with bench/floor_app.py's two routes
        sys.path.insert(0, str(Path(__file__).parent))
        app = importlib.import_module("floor_app").app
    else:
        app = create_app()
    client = app.test_client()
    if args.bearer:
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {args.bearer}"
    else:
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert token is not None
        signed_in = client.post(
            "/login",
            data={"email": args.email, "password": PASSWORD, "csrf_token": token.group(1)},
        )
        assert signed_in.status_code == 303, signed_in.status_code

    spent = {name: _timed(name) for name in args.time}

    engine = app.extensions["portal.db"]["engine"]
    statements: list[str] = []
    took: list[float] = []  # each statement's seconds, in the order of `statements`

    bound: list[Any] = []  # each statement's parameters, for --explain

    def _before(*a: Any) -> None:
        statements.append(a[2])
        bound.append(a[3])
        took.append(-time.perf_counter())

    def _after(*_a: Any) -> None:
        took[-1] += time.perf_counter()

    event.listen(engine, "before_cursor_execute", _before)
    event.listen(engine, "after_cursor_execute", _after)

    for path in args.pages:
        if args.dump:
            args.dump.mkdir(parents=True, exist_ok=True)
            for variant, headers in (("page", {}), ("fragment", {"HX-Request": "true"})):
                html = client.get(path, headers=headers).get_data(as_text=True)
                html = re.sub(r'(name="csrf[-_]token" (?:content|value)=)"[^"]*"', r'\1"…"', html)
                name = path.strip("/").replace("/", "_").replace("?", "_") or "root"
                (args.dump / f"{name}.{variant}.html").write_text(html)
        for _ in range(30):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
        # The statements of one request, each with its median time over 20 requests.
        runs = []
        for _ in range(20):
            statements.clear()
            took.clear()
            bound.clear()
            client.get(path)
            runs.append(list(took))
        sample = list(statements)
        if args.explain:
            _explain(engine, sample, list(bound))
        sample_ms = [statistics.median(r[i] for r in runs) * 1000 for i in range(len(sample))]
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
        times = []
        inside: dict[str, list[float]] = {name: [] for name in spent}
        for _ in range(args.requests):
            for calls in spent.values():
                calls.clear()
            start = time.perf_counter()
            client.get(path)
            times.append(time.perf_counter() - start)
            for name, calls in spent.items():
                inside[name].append(sum(calls))
        if args.profile:
            profiler.disable()
            stats = pstats.Stats(profiler)
            if args.callers:
                stats.sort_stats(args.sort).print_callers(args.callers)
            elif args.callees:
                stats.sort_stats(args.sort).print_callees(args.callees)
            else:
                stats.sort_stats(args.sort).print_stats(60)
        print(
            f"{path:<24} {statistics.median(times) * 1000:6.2f} ms median  "
            f"{min(times) * 1000:6.2f} ms min  {len(sample):3d} statements"
        )
        for name, per_request in inside.items():
            print(f"    {statistics.median(per_request) * 1000:6.2f} ms median in {name}")
        if args.verbose:
            for statement, ms in zip(sample, sample_ms, strict=True):
                print(f"    {ms:6.3f} ms  {statement.split(chr(10))[0][:110]}")
            if engine.dialect.name == "postgresql":
                _plan_cache(engine)


def _plan_cache(engine: Any) -> None:
    """PostgreSQL: the statements psycopg prepared on the (one) pooled connection, and how
    often the server planned each afresh (custom) or reused its generic plan. A statement
    planned afresh on every run pays its planning time each time."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT generic_plans, custom_plans, statement FROM pg_prepared_statements"
            " ORDER BY custom_plans DESC"
        ).all()
    for generic, custom, statement in rows:
        text = " ".join(statement.split())[:90]
        print(f"    plans: {generic:5d} generic {custom:5d} custom  {text}")


def _explain(engine: Any, statements: list[str], parameters: list[Any]) -> None:
    """Each SELECT's plan with its actual times (run again, outside the request)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, params in zip(statements, parameters, strict=True):
            if not statement.lstrip().upper().startswith(("SELECT", "WITH", "(SELECT")):
                continue
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            print("\n".join(row[0] for row in cursor.fetchall()), end="\n\n")
    finally:
        raw.close()


def _timed(name: str) -> list[float]:
    """Wrap `module:function` in place with a timer; the list gets each call's seconds. Only
    calls made through the module's attribute are seen (not references taken at import)."""
    module_name, _, attr = name.partition(":")
    module = importlib.import_module(module_name)
    original: Callable[..., Any] = getattr(module, attr)
    calls: list[float] = []

    @functools.wraps(original)
    def timed(*a: Any, **kw: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*a, **kw)
        finally:
            calls.append(time.perf_counter() - start)

    setattr(module, attr, timed)
    return calls


if __name__ == "__main__":
    main()

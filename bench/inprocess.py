"""Per-request cost of pages, in process (Flask test client), with statement counts.

Complements bench/run.sh (which measures throughput over HTTP): this one tells where a single
request's time goes. Uses the database in DATABASE_URL, which must already be upgraded and
seeded (`flask --app wsgi db upgrade && flask --app wsgi demo seed --patients 2000
--labs-per-patient 50`).

    DATABASE_URL=sqlite:////tmp/bench.db python bench/inprocess.py            # ms per request
    DATABASE_URL=... python bench/inprocess.py --profile /my/lab-results      # cProfile top 40
    python bench/inprocess.py --email dr.chen@example.org /staff/patients

Knobs: --requests N (default 300 per page after 30 warm-up requests), --email.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))

from sqlalchemy import event  # noqa: E402

from portal import create_app  # noqa: E402

PASSWORD = "Demo-Portal-2026!"  # noqa: S105  (the public demo password, CONTRACT §4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", default=["/my/", "/my/lab-results"])
    parser.add_argument("--email", default="alice@example.org")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumulative)")
    parser.add_argument("--dump", type=Path, help="write each page's HTML into this folder")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the statements")
    args = parser.parse_args()

    app = create_app()
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert token is not None
    signed_in = client.post(
        "/login", data={"email": args.email, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert signed_in.status_code == 303, signed_in.status_code

    engine = app.extensions["portal.db"]["engine"]
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

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
        statements.clear()
        client.get(path)
        sample = list(statements)
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
        times = []
        for _ in range(args.requests):
            start = time.perf_counter()
            client.get(path)
            times.append(time.perf_counter() - start)
        if args.profile:
            profiler.disable()
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(60)
        print(
            f"{path:<24} {statistics.median(times) * 1000:6.2f} ms median  "
            f"{min(times) * 1000:6.2f} ms min  {len(sample):3d} statements"
        )
        if args.verbose:
            print("\n".join("    " + s.split("\n")[0][:120] for s in sample))


if __name__ == "__main__":
    main()

"""Does a failed sign-in take the same time for an address with an account and one without?
(issue 11: "the same answer ... in the same time (±20 %)").

In process (Flask test client), on a fresh demo database in a temporary directory, with the
production argon2 parameters: wrong passwords for real accounts and for unknown addresses,
alternating so that background load hits both alike, and the same through the token endpoint.
The pause is lifted (limits set high) so every attempt checks a password.

    .venv/bin/python bench/sign_in_timing.py [ROUNDS]
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))

from portal import create_app, demo  # noqa: E402
from portal.cli import upgrade_database  # noqa: E402
from portal.extensions import db  # noqa: E402

REAL = ("alice@example.org", "bob@example.org", "carol@example.org", "dr.chen@example.org")
UNKNOWN = ("nobody-here@example.org", "no.one@example.net", "ghost@example.org", "x@example.com")


def main(rounds: int) -> None:
    folder = tempfile.mkdtemp(prefix="portal-timing-")
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{folder}/timing.db",
            "SECRET_KEY": "timing-secret-key-not-for-production",
            "MAIL_DIR": f"{folder}/mail",
            "AUDIT_CHECKPOINT_DIR": f"{folder}/checkpoints",
            "LOGIN_MAX_FAILURES": 10**6,
            "LOGIN_MAX_FAILURES_PER_ADDRESS": 10**6,
            "WTF_CSRF_ENABLED": False,
        }
    )
    assert app.config["ARGON2_PARAMS"] == {}, "production argon2 parameters"
    upgrade_database(app)
    with app.app_context():
        demo.seed(db.session)
    client = app.test_client()
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").text)
    assert token is not None
    times: dict[str, list[float]] = {
        k: [] for k in ("page real", "page unknown", "api real", "api unknown")
    }

    def page(email: str) -> None:
        client.post("/login", data={"email": email, "password": "wrong password, twelve+"})

    def api(email: str) -> None:
        client.post("/api/v1/auth/token", json={"email": email, "password": "wrong password!"})

    for n in range(rounds + 2):
        for door, call in (("page", page), ("api", api)):
            for kind, emails in (("real", REAL), ("unknown", UNKNOWN)):
                began = time.perf_counter()
                call(emails[n % len(emails)])
                if n >= 2:  # two warm-up rounds
                    times[f"{door} {kind}"].append((time.perf_counter() - began) * 1000)
    for door in ("page", "api"):
        real = statistics.median(times[f"{door} real"])
        unknown = statistics.median(times[f"{door} unknown"])
        print(
            f"RESULT {door}: real {real:.1f} ms, unknown {unknown:.1f} ms (medians of {rounds}), "
            f"unknown/real {unknown / real:.2f}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)

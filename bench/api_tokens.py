"""Give N generated patients a sign-in and an API token; print "<patient id> <token>" lines.

python bench/api_tokens.py 1000 > ids.txt     (with DATABASE_URL etc. set, as for `flask`)

`demo seed --patients N` makes patients without accounts (portal.demo.seed_bulk), and a bearer
token belongs to a user. So this benchmark-only step makes a password-less patient account for
each (nobody can sign in with it) through `accounts.create_user`, links it, and starts a token
for it with `sessions.start`, exactly the row `POST /api/v1/auth/token` would write, without
an argon2 check per patient. Bench data only: never run it against a real database.
"""

from __future__ import annotations

import sys

from sqlalchemy import select

from portal import create_app
from portal.access import unscoped
from portal.extensions import db
from portal.models import AuthMethod, PatientProfile, Role
from portal.services import accounts, sessions
from portal.transactions import unit_of_work


def main(count: int) -> list[tuple[int, str]]:
    app = create_app()
    if app.config["PORTAL_ENV"] == "production":
        raise SystemExit("bench accounts are never made in production")
    issued: list[tuple[int, str]] = []
    with app.app_context():
        generated = unscoped(
            select(PatientProfile)
            .where(
                PatientProfile.user_id.is_(None),
                PatientProfile.medical_record_number.like("GEN-%"),
            )
            .order_by(PatientProfile.id)
            .limit(count),
            "bench: accounts for generated patients",
        )
        with unit_of_work(db.session) as s:
            for patient in s.scalars(generated).all():
                user = accounts.create_user(
                    s,
                    email=f"{patient.medical_record_number.lower()}@bench.example.org",
                    role=Role.PATIENT,
                    password=None,
                )
                patient.user_id = user.id
                token = sessions.start(s, user, method=AuthMethod.TOKEN, client="bench (wrk)")
                issued.append((patient.id, token))
    if len(issued) < count:
        raise SystemExit(f"only {len(issued)} generated patients without an account (want {count})")
    return issued


if __name__ == "__main__":
    for patient_id, token in main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000):
        print(patient_id, token)

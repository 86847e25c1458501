"""Print the database's plan (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on SQLite) for
the patient's lab list page, exactly as `labs.latest_page` runs it, for a seeded database.

    DATABASE_URL=... python bench/explain.py [alice@example.org]

bench/run.sh calls it after seeding when EXPLAIN=1. What to look for: the page reads
`lab_result` through `ix_lab_result_patient_collected` (patient, then newest sample first), never a
sequential scan of the table.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))

from sqlalchemy import select  # noqa: E402

from portal import create_app  # noqa: E402
from portal.access import Actor, reader, scoped  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import User  # noqa: E402
from portal.services import labs  # noqa: E402


def main(email: str) -> None:
    app = create_app()
    with app.app_context():
        session = db.session
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None, email
        actor = Actor.of(user)
        # The first page with no filter: the statement latest_page runs (built once per role).
        pages, _count = scoped(labs._page_stmts, actor, False, False, False)
        conn = session.connection()
        compiled = pages.first.compile(dialect=conn.dialect)
        values = compiled.construct_params({**reader(actor), "page_limit": 21})
        postgres = conn.dialect.name == "postgresql"
        sql = ("EXPLAIN ANALYZE " if postgres else "EXPLAIN QUERY PLAN ") + str(compiled)
        # Driver-level: the parameters are ints and plain strings (StrEnum members) here.
        args = values if postgres else tuple(values[k] for k in compiled.positiontup or [])
        for row in conn.exec_driver_sql(sql, args):
            print(" | ".join(str(c) for c in row))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "alice@example.org")

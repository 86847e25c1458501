"""Print the database's plans for the busiest lists, exactly as the services run them, on a
seeded database: the patient's lab list (pages and API rows), the staff patient list and its
search, the inboxes, the audit report and the access log (`tests/query_plans.py`, the same
cases and checks as tests/integration/test_query_plans.py, which seeds its own small data).

    DATABASE_URL=... python bench/explain.py [--plans] [patient] [provider] [admin]

On PostgreSQL each statement runs under EXPLAIN (ANALYZE, FORMAT JSON) and is checked: no
sequential scan of a big table, no page cut from a sort of a whole history, no patient's rows
found by walking everyone's; problems the test lets through are marked "known". `--plans`
also prints each plan as text. On SQLite it prints EXPLAIN QUERY PLAN. bench/run.sh calls it
after seeding when EXPLAIN=1. It ends with the number of problems the test would refuse; on
a database whose messages and audit log are the demo's few rows, those tables' plans mean
nothing (a scan of a tiny table is the right plan).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path.cwd()))

from sqlalchemy import select  # noqa: E402
from sqlalchemy.engine import Connection  # noqa: E402

from portal import create_app  # noqa: E402
from portal.access import Actor  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import User  # noqa: E402
from tests.query_plans import KNOWN, captured, known, list_cases, plan_problems  # noqa: E402

#: Who reads the lists, unless named: the patient, the provider, the administrator.
DEFAULT_READERS = ("alice@example.org", "dr.okafor@example.org", "admin@example.org")


def _text_plan(plan: dict[str, Any], depth: int = 0) -> list[str]:
    """A JSON plan as indented lines: node, table or index, estimated and actual rows."""
    where = plan.get("Index Name") or plan.get("Relation Name") or ""
    line = f"{'  ' * depth}{plan['Node Type']} {where}".rstrip()
    line += f"  (rows {plan['Plan Rows']} est"
    if "Actual Rows" in plan:
        line += f", {plan['Actual Rows']} actual, {plan['Actual Total Time']:.2f} ms"
    lines = [line + ")"]
    for key in ("Index Cond", "Filter", "Sort Key"):
        if key in plan:
            lines.append(f"{'  ' * depth}  {key}: {plan[key]}")
    for child in plan.get("Plans", []):
        lines.extend(_text_plan(child, depth + 1))
    return lines


def _explain(conn: Connection, statement: str, parameters: Any, show: bool) -> list[str]:
    """Problems of one statement (PostgreSQL), printing its plan when `show`."""
    if conn.dialect.name != "postgresql":
        for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters):
            print("    " + " | ".join(str(c) for c in row))
        return []
    sql = "EXPLAIN (ANALYZE, FORMAT JSON) " + statement
    plan = conn.exec_driver_sql(sql, parameters).scalar_one()[0]["Plan"]
    if show:
        print("\n".join("    " + line for line in _text_plan(plan)))
    return plan_problems(plan)


def main(args: list[str]) -> None:
    show = "--plans" in args
    names = [a for a in args if not a.startswith("--")]
    emails = [*names, *DEFAULT_READERS[len(names) :]][:3]
    app = create_app()
    unknown = 0
    with app.app_context():
        session = db.session
        actors = []
        for email in emails:
            user = session.scalar(select(User).where(User.email == email))
            assert user is not None, email
            actors.append(Actor.of(user))
        patient, provider, admin = actors
        conn = session.connection()
        cases = list_cases(session, patient=patient, provider=provider, admin=admin)
        for name, run in cases.items():
            print(f"== {name}")
            with captured(conn) as statements:
                run()
            for statement, parameters in statements:
                print("  " + " ".join(statement.split())[:160])
                for problem in _explain(conn, statement, parameters, show):
                    why = [w for k, w in KNOWN.get(name, ()) if problem.startswith(k)]
                    print(f"    !! {problem}" + (f" (known: {why[0]})" if why else ""))
                    unknown += not known(name, problem)
        session.rollback()
    print(f"== {unknown} problem(s) the test would refuse")


if __name__ == "__main__":
    main(sys.argv[1:])

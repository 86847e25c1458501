"""Query plans of the busiest lists, as the services run them: the statements are captured as
they reach the driver (`before_cursor_execute`) and explained with the same parameters, and a
PostgreSQL plan tree (`EXPLAIN (FORMAT JSON)`) is walked for what does not scale.

Used by tests/integration/test_query_plans.py (on data it seeds) and bench/explain.py (on a
seeded benchmark database, e.g. 1 M results).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from portal.access import Actor
from portal.audit import report
from portal.services import labs, messaging, patients

#: Tables that grow with patients and use: none of them may be read whole for a page.
#: (`care_assignment` is left out: a provider's scope reads their whole team from it by
#: design, one narrow row per patient.)
BIG_TABLES = frozenset(
    {
        "lab_result",
        "lab_result_version",
        "audit_event",
        "message",
        "conversation",
        "conversation_participant",
        "notification",
        "patient_profile",
    }
)
#: A page (a LIMIT) cut from a sort of more rows than this (the planner's estimate) is a sort
#: of someone's whole history: alice's results and audit entries, and dr. Okafor's threads, are
#: seeded above it in the test; the pages checked hold at most 51 rows.
SORT_ROWS = 60
#: A scan that finds one patient's rows by filtering (its index picks no key) walks other
#: patients' rows to find them: fine while the patient is a large share of the table, as in
#: a test, ruinous at a million rows, so it is refused whatever the planner's estimate.
PATIENT_FILTERED = re.compile(r"\bpatient_id = \d+\b")
#: An index condition that picks rows by a key (the reader's own, a record's), not a range.
EQUALITY = re.compile(r"\w+ = ")


@contextmanager
def captured(conn: Connection) -> Iterator[list[tuple[str, Any]]]:
    """The SELECT statements (and their parameters) sent on `conn` inside the block."""
    statements: list[tuple[str, Any]] = []

    def before(_conn, _cursor, statement, parameters, _context, executemany):  # type: ignore[no-untyped-def]
        if not executemany and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    event.listen(conn, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(conn, "before_cursor_execute", before)


def plan_problems(plan: dict[str, Any]) -> list[str]:
    """What is wrong with one plan tree: sequential scans of big tables, a page cut from a sort
    of a whole history, one patient's rows found by walking everyone's."""
    found: list[str] = []

    def walk(node: dict[str, Any], parent: str | None) -> None:
        kind, table = node["Node Type"], node.get("Relation Name")
        if kind == "Seq Scan" and table in BIG_TABLES:
            found.append(f"Seq Scan on {table}")
        if kind == "Sort" and parent == "Limit":
            rows = sum(child["Plan Rows"] for child in node.get("Plans", []))
            if rows > SORT_ROWS:
                found.append(f"Sort of ~{rows} rows by {', '.join(node['Sort Key'])}")
        if (
            table in BIG_TABLES
            and PATIENT_FILTERED.search(node.get("Filter", ""))
            and not EQUALITY.search(node.get("Index Cond", ""))
        ):
            found.append(f"{kind} on {table} filters on patient_id outside its index")
        for child in node.get("Plans", []):
            walk(child, kind)

    walk(plan, None)
    return found


#: What these lists still do that no index fixes, by list: (problem, why). Each is a change to
#: the statement (or a trigram index), reported with issue 13; nothing else is let through.
KNOWN: dict[str, tuple[tuple[str, str], ...]] = {
    "staff patient list": (
        (
            "Seq Scan on patient_profile",
            "the total counts the provider's whole team; on rows just written (no visibility "
            "map, as in the test's transaction) the planner hashes patient_profile instead of "
            "an index-only scan of its key, which it uses once the table is vacuumed",
        ),
    ),
    "staff patient search": (
        ("Seq Scan on patient_profile", "a substring LIKE uses no b-tree (pg_trgm would)"),
    ),
    "provider's inbox": (
        (
            "Seq Scan on conversation",
            "the scope's care-team filter looks independent of the participant one, so the "
            "planner expects a few threads and hashes the table",
        ),
        ("Seq Scan on message", "newest message per thread: IN (max(id) ... GROUP BY)"),
    ),
    "provider's team inbox": (
        ("Sort of ~", "unread threads first: an order computed per thread, no index has it"),
        ("Seq Scan on patient_profile", "joined for names, over the provider's whole team"),
    ),
}


def known(name: str, problem: str) -> bool:
    return any(problem.startswith(known) for known, _why in KNOWN.get(name, ()))


def explain(conn: Connection, statement: str, parameters: Any) -> dict[str, Any]:
    raw = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar_one()
    return raw[0]["Plan"]


def list_cases(
    session: Session, *, patient: Actor, provider: Actor, admin: Actor
) -> dict[str, Callable[[], object]]:
    """The lists to check, by name: each runs its first page and the page after it."""
    everything = labs.LabFilter()

    def lab_pages(rows: bool) -> None:
        read = labs.latest_rows if rows else labs.latest_page
        first = read(session, patient, everything)
        read(session, patient, everything, cursor=first.next_cursor)

    def roster(q: str | None) -> None:
        first = patients.search(session, provider, q)
        patients.search(session, provider, q, cursor=first.next_cursor)

    def audit_report(patient_id: int | None) -> None:
        filters = report.AuditFilters(patient_id=patient_id)
        first = report.audit_events(session, admin, filters)
        report.audit_events(session, admin, filters, cursor=first.next_cursor)

    def access_log() -> None:
        first = report.access_log_for_patient(session, patient)
        report.access_log_for_patient(session, patient, cursor=first.next_cursor)

    return {
        "patient's lab list (pages)": lambda: lab_pages(rows=False),
        "patient's lab list (API rows)": lambda: lab_pages(rows=True),
        "staff patient list": lambda: roster(None),
        "staff patient search": lambda: roster("patient 12"),
        "patient's inbox": lambda: messaging.inbox(session, patient),
        "provider's inbox": lambda: messaging.inbox(session, provider),
        "provider's team inbox": lambda: messaging.team_inbox(session, provider),
        "audit report": lambda: audit_report(None),
        "audit report of one patient": lambda: audit_report(patient.patient_id),
        "patient's access log": access_log,
    }

"""EXPLAIN checks (issue 13, point 4): on tables big enough that the planner prefers indexes,
the statements the services really run for the busiest lists read through indexes, never a
sequential scan of a big table, and never sort a patient's (or a reader's) whole history to
show one page.

PostgreSQL only (the production database; SQLite's planner has no costs to compare). The data
is written in the test's rolled-back transaction and `ANALYZE`d there (the statistics roll
back with it), so the session's database is left as it was. The statements are captured as
they reach the driver while the service runs, then explained with the same parameters
(`tests/query_plans.py`): what is checked is exactly what the portal sends.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from portal import demo
from portal.access import unscoped
from portal.db import utcnow
from portal.models import (
    AuditAction,
    AuditEvent,
    Conversation,
    ConversationParticipant,
    Message,
    MessageStatus,
    PatientProfile,
)
from tests.query_plans import captured, explain, known, list_cases, plan_problems
from tests.support import backend

pytestmark = pytest.mark.skipif(backend() != "postgresql", reason="EXPLAIN checks need PostgreSQL")

# The data, in the proportions of a real portal: one patient's history and one provider's
# team are a small share of each table (alice under 1 %, dr. Okafor every 10th generated patient),
# so the planner weighs indexes as it would on the 1 M-result database.
BULK_PATIENTS = 2000
RESULTS_EACH = 10
ALICE_RESULTS = 80
AUDIT_EACH = 10
ALICE_AUDIT = 80
THREADS_EACH = 2
OKAFOR_EVERY = 10


def _seed(session, people) -> None:  # type: ignore[no-untyped-def]
    """Bulk patients (every 10th on dr. Okafor's team) with results, audit entries and threads,
    and a long history for alice; then fresh statistics."""
    rng = random.Random(13)  # noqa: S311
    now = utcnow()
    okafor, chen, admin = people.user("dr_okafor"), people.user("dr_chen"), people.user("admin")
    alice = people.user("alice").patient
    before = {p for (p,) in session.execute(_all_patient_ids())}
    demo.seed_bulk(
        session, patients=BULK_PATIENTS, labs_per_patient=RESULTS_EACH, okafor_every=OKAFOR_EVERY
    )
    bulk = sorted({p for (p,) in session.execute(_all_patient_ids())} - before)
    demo.bulk_results(session, [alice.id], ALICE_RESULTS, ordered_by_id=okafor.id, now=now, rng=rng)
    entries = [
        {
            "occurred_at": now - timedelta(minutes=n),
            "actor_id": (okafor.id, chen.id, admin.id)[n % 3],
            "actor_role": "provider",
            "action": AuditAction.VIEW,
            "entity_type": "lab_result_list",
            "patient_id": patient_id,
            "detail": "{}",  # not sealed: the sealer does not run in tests
        }
        for patient_id, count in [*((p, AUDIT_EACH) for p in bulk), (alice.id, ALICE_AUDIT)]
        for n in range(count)
    ]
    session.execute(insert(AuditEvent), entries)
    threads = [
        {
            "patient_id": p,
            "subject": "Follow-up",
            "created_by_id": okafor.id if p % OKAFOR_EVERY == 0 else chen.id,
            "last_message_at": now - timedelta(minutes=p * 7 + t),
        }
        for p in bulk
        for t in range(THREADS_EACH)
    ]
    rows = session.execute(
        insert(Conversation).returning(
            Conversation.id, Conversation.patient_id, Conversation.created_by_id
        ),
        threads,
    ).all()
    session.execute(
        insert(ConversationParticipant),
        [{"conversation_id": c, "user_id": by} for c, _p, by in rows],
    )
    session.execute(
        insert(Message),
        [
            {
                "conversation_id": c,
                "patient_id": p,
                "sender_id": by,
                "recipient_id": by,
                "body": "Please book a follow-up visit.",
                "status": MessageStatus.READ if m else MessageStatus.SENT,
                "sent_at": now - timedelta(minutes=m),
            }
            for c, p, by in rows
            for m in range(3)
        ],
    )
    session.flush()
    # Every table, the small ones too: the planner's choice rests on all of them.
    session.connection().exec_driver_sql("ANALYZE")


def _all_patient_ids():  # type: ignore[no-untyped-def]
    return unscoped(select(PatientProfile.id), "plan check: bulk patients")


def test_busy_lists_read_through_indexes(session, people) -> None:  # type: ignore[no-untyped-def]
    _seed(session, people)
    cases = list_cases(
        session,
        patient=people.actor("alice"),
        provider=people.actor("dr_okafor"),
        admin=people.actor("admin"),
    )
    conn = session.connection()
    failures: list[str] = []
    for name, run in cases.items():
        with captured(conn) as statements:
            run()
        assert statements, f"{name}: no statement captured"
        for statement, parameters in statements:
            found = plan_problems(explain(conn, statement, parameters))
            problems = [p for p in found if not known(name, p)]
            if problems:
                failures.append(f"{name}: {'; '.join(problems)}\n  {statement[:300]}")
    assert not failures, "\n".join(failures)

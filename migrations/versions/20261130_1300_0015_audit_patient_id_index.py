"""audit_patient_id_index: the audit log by patient in id order

The admin report filtered by patient and a patient's access log list entries newest (highest
id) first: (patient_id, id) serves that order, where (patient_id, occurred_at) left the
database to sort the patient's whole log or to walk everyone's entries backwards to find
theirs. Found by tests/integration/test_query_plans.py (issue 13, point 4).

Revision ID: 0015
Revises: 0016
Create Date: 2026-11-30 13:00:00
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from alembic import op

revision: str = "0015"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain index statements, no batch: on SQLite a batch could rebuild audit_event and drop
    # its append-only triggers. On PostgreSQL the index is built CONCURRENTLY (outside the
    # migration's transaction): every page view appends to audit_event, and a plain CREATE
    # INDEX would hold those appends, so the pages, for as long as a big log takes to index.
    # Outside a transaction a step can be cut off after the one before it: a run after an
    # interrupted one finds the old index already gone (docs/operations.md).
    with _concurrently_on_postgresql() as concurrently:
        op.create_index(
            "ix_audit_event_patient_id",
            "audit_event",
            ["patient_id", "id"],
            postgresql_concurrently=concurrently,
        )
        op.drop_index(
            "ix_audit_event_patient_time",
            table_name="audit_event",
            postgresql_concurrently=concurrently,
            if_exists=True,
        )


def downgrade() -> None:
    with _concurrently_on_postgresql() as concurrently:
        op.create_index(
            "ix_audit_event_patient_time",
            "audit_event",
            ["patient_id", "occurred_at"],
            postgresql_concurrently=concurrently,
        )
        op.drop_index(
            "ix_audit_event_patient_id",
            table_name="audit_event",
            postgresql_concurrently=concurrently,
        )


@contextmanager
def _concurrently_on_postgresql() -> Iterator[bool]:
    if op.get_bind().dialect.name != "postgresql":
        yield False
        return
    with op.get_context().autocommit_block():
        yield True

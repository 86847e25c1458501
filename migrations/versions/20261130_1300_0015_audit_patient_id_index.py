"""audit_patient_id_index: the audit log by patient in id order

The admin report filtered by patient and a patient's access log list entries newest (highest
id) first: (patient_id, id) serves that order, where (patient_id, occurred_at) left the
database to sort the patient's whole log or to walk everyone's entries backwards to find
theirs. Found by tests/integration/test_query_plans.py (issue 13, point 4).

Revision ID: 0015
Revises: 0012
Create Date: 2026-11-30 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain index statements, no batch: on SQLite a batch could rebuild audit_event and drop
    # its append-only triggers.
    op.create_index("ix_audit_event_patient_id", "audit_event", ["patient_id", "id"])
    op.drop_index("ix_audit_event_patient_time", table_name="audit_event")


def downgrade() -> None:
    op.create_index("ix_audit_event_patient_time", "audit_event", ["patient_id", "occurred_at"])
    op.drop_index("ix_audit_event_patient_id", table_name="audit_event")

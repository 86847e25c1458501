"""result_holds: a clinician's per-result hold (who, why, until when); a move request's visit

`lab_result.held_by_id`, `hold_reason` and `held_until`: a hold that the information-blocking
rule's preventing-harm exception allows (45 CFR 171.201) is one clinician's judgement about
one result, with its reason recorded, and it ends. Existing results have no hold. The
category timers (`release_policy`) now apply only when the clinic turns them on
(`clinic_setting` key `category_release_rules`, no row: off); that needs no schema change.

`appointment.replaces_id`: a patient's request to move a confirmed visit names that visit,
which stands until the request is confirmed (issue 25: a declined move left the patient with
no visit at all). `appointment.proposed_by_id`: "Propose another time" now waits for the
patient's acceptance (the request moves to the proposed time and stays requested, out of the
provider's queue). Existing rows replace nothing and propose nothing.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lab_result", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("hold_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("held_until", portal.db.UTCDateTime(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_lab_result_held_by_id_user_account"), "user_account", ["held_by_id"], ["id"]
        )
    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replaces_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("proposed_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_appointment_replaces_id_appointment"), "appointment", ["replaces_id"], ["id"]
        )
        batch_op.create_foreign_key(
            op.f("fk_appointment_proposed_by_id_user_account"),
            "user_account",
            ["proposed_by_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.drop_constraint(
            op.f("fk_appointment_proposed_by_id_user_account"), type_="foreignkey"
        )
        batch_op.drop_constraint(op.f("fk_appointment_replaces_id_appointment"), type_="foreignkey")
        batch_op.drop_column("proposed_by_id")
        batch_op.drop_column("replaces_id")
    with op.batch_alter_table("lab_result", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_lab_result_held_by_id_user_account"), type_="foreignkey")
        batch_op.drop_column("held_until")
        batch_op.drop_column("hold_reason")
        batch_op.drop_column("held_by_id")

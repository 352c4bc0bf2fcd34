"""aliases and lineage: named pointers to entries, and the parent a fine-tuned model came from

Revision ID: 0005
Revises: 0004
Created: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alias",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("ref", sa.String(), nullable=False),
        sa.Column("revision", sa.String(), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("alias", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alias_ref"), ["ref"], unique=False)

    with op.batch_alter_table("model", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_ref", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("parent_revision", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("finetune_run_id", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("finetune_outcome_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_model_parent_ref"), ["parent_ref"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("model", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_parent_ref"))
        batch_op.drop_column("finetune_outcome_id")
        batch_op.drop_column("finetune_run_id")
        batch_op.drop_column("parent_revision")
        batch_op.drop_column("parent_ref")

    with op.batch_alter_table("alias", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alias_ref"))

    op.drop_table("alias")

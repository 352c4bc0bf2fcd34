"""outcomes: fine-tune outcomes and dataset signatures

Revision ID: 0003
Revises: 0002
Created: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset_signature",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("probe", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modality", sa.String(), nullable=False),
        sa.Column("n_samples", sa.Integer(), nullable=False),
        sa.Column("data_path", sa.String(), nullable=False),
        sa.Column("vector", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dataset_signature", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dataset_signature_fingerprint"), ["fingerprint"], unique=False)

    op.create_table(
        "finetune_outcome",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("ref", sa.String(), nullable=False),
        sa.Column("revision", sa.String(), nullable=True),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("dataset", sa.String(), nullable=True),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("budget", sa.JSON(), nullable=False),
        sa.Column("val_accuracy", sa.Float(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("output_dir", sa.String(), nullable=True),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("finetune_outcome", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_finetune_outcome_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_finetune_outcome_fingerprint"), ["fingerprint"], unique=False)
        batch_op.create_index(batch_op.f("ix_finetune_outcome_ref"), ["ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_finetune_outcome_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("finetune_outcome", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_finetune_outcome_run_id"))
        batch_op.drop_index(batch_op.f("ix_finetune_outcome_ref"))
        batch_op.drop_index(batch_op.f("ix_finetune_outcome_fingerprint"))
        batch_op.drop_index(batch_op.f("ix_finetune_outcome_created_at"))

    op.drop_table("finetune_outcome")
    with op.batch_alter_table("dataset_signature", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_signature_fingerprint"))

    op.drop_table("dataset_signature")

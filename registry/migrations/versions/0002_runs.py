"""runs: records of recommendations

Revision ID: 0002
Revises: 0001
Created: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("failure", sa.String(), nullable=True),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("command", sa.String(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("environment", sa.JSON(), nullable=False),
        sa.Column("data_path", sa.String(), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("modality", sa.String(), nullable=False),
        sa.Column("task", sa.String(), nullable=False),
        sa.Column("n_samples", sa.Integer(), nullable=False),
        sa.Column("classes", sa.JSON(), nullable=True),
        sa.Column("sample_ids", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_run_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_fingerprint"), ["fingerprint"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_status"), ["status"], unique=False)

    op.create_table(
        "run_candidate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("ref", sa.String(), nullable=False),
        sa.Column("revision", sa.String(), nullable=True),
        sa.Column("baseline_of", sa.String(), nullable=True),
        sa.Column("cache_key", sa.String(), nullable=True),
        sa.Column("params", sa.Integer(), nullable=True),
        sa.Column("feature_dim", sa.Integer(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("samples_per_s", sa.Float(), nullable=True),
        sa.Column("from_cache", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("run_candidate", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_run_candidate_run_id"), ["run_id"], unique=False)

    op.create_table(
        "run_result",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("best_ref", sa.String(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("ranking", sa.JSON(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["run.id"],
        ),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_table(
        "run_score",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("ref", sa.String(), nullable=False),
        sa.Column("estimator", sa.String(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("run_score", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_run_score_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("run_score", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_score_run_id"))

    op.drop_table("run_score")
    op.drop_table("run_result")
    with op.batch_alter_table("run_candidate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_candidate_run_id"))

    op.drop_table("run_candidate")
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_status"))
        batch_op.drop_index(batch_op.f("ix_run_fingerprint"))
        batch_op.drop_index(batch_op.f("ix_run_created_at"))

    op.drop_table("run")

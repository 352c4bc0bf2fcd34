"""initial: models, tags, events

Revision ID: 0001
Revises:
Created: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("ref", sa.String(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_event_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_event_ref"), ["ref"], unique=False)

    op.create_table(
        "model",
        sa.Column("ref", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("architecture", sa.String(), nullable=False),
        sa.Column("revision", sa.String(), nullable=True),
        sa.Column("modality", sa.String(), nullable=False),
        sa.Column("task", sa.String(), nullable=True),
        sa.Column("num_classes", sa.Integer(), nullable=True),
        sa.Column("params", sa.Integer(), nullable=True),
        sa.Column("feature_dim", sa.Integer(), nullable=True),
        sa.Column("preprocessing", sa.JSON(), nullable=False),
        sa.Column("license", sa.String(), nullable=True),
        sa.Column("pretrain_dataset", sa.String(), nullable=True),
        sa.Column("imagenet_top1", sa.Float(), nullable=True),
        sa.Column("origin", sa.String(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("model", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_modality"), ["modality"], unique=False)
        batch_op.create_index(batch_op.f("ix_model_ref"), ["ref"], unique=True)
        batch_op.create_index(batch_op.f("ix_model_source"), ["source"], unique=False)

    op.create_table(
        "model_tag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["model.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_id", "name"),
    )
    with op.batch_alter_table("model_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_tag_model_id"), ["model_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_model_tag_name"), ["name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("model_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_tag_name"))
        batch_op.drop_index(batch_op.f("ix_model_tag_model_id"))

    op.drop_table("model_tag")
    with op.batch_alter_table("model", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_source"))
        batch_op.drop_index(batch_op.f("ix_model_ref"))
        batch_op.drop_index(batch_op.f("ix_model_modality"))

    op.drop_table("model")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_ref"))
        batch_op.drop_index(batch_op.f("ix_event_at"))
        batch_op.drop_index(batch_op.f("ix_event_action"))

    op.drop_table("event")

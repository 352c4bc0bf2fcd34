"""params: 64-bit, for models of more than 2**31 parameters

Revision ID: 0004
Revises: 0003
Created: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("model", "run_candidate"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "params", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=True
            )


def downgrade() -> None:
    for table in ("model", "run_candidate"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "params", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=True
            )

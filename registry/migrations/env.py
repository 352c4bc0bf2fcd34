"""Alembic environment: run with the connection tlreg hands over (see tlreg.registry.db)."""

from alembic import context
from sqlalchemy import create_engine
from tlreg.registry import outcomes, runs  # noqa: F401  (registers their tables on the metadata)
from tlreg.registry.models import metadata

connection = context.config.attributes.get("connection")


def _run(conn) -> None:
    context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:  # the `alembic` command line, for developers writing a new revision
    with create_engine(context.config.get_main_option("sqlalchemy.url")).begin() as conn:
        _run(conn)

"""The registry's schema migrations (Alembic revisions in ``versions/``, run by :mod:`tlreg.registry.db`).

The two names below are read without importing Alembic or SQLAlchemy: :func:`tlreg.registry.db.at_head`
and the CLI's ORM-free reader (:mod:`tlreg.registry.sqlite_read`) ask the database which revision it
records and compare it with :data:`SCHEMA_HEAD`.
"""

#: The newest revision in ``versions/`` (tests/test_db.py checks it against Alembic's head): a database
#: recorded at it is opened without importing Alembic, and read by the fast reader.
SCHEMA_HEAD = "0005"
#: Alembic's table of the revision a database is at.
VERSION_TABLE = "alembic_version"

"""Alembic environment: runs the revisions in ``versions/`` against one database.

Started by :mod:`gateway.store.migrate`, which passes an open connection (in a write
transaction of :class:`gateway.store.database.Database`) as ``config.attributes["connection"]``,
so the whole upgrade commits or rolls back as one transaction on SQLite and PostgreSQL. In
offline mode (``sql=True``) the SQL is written out instead, for a database administrator.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from gateway.store.tables import metadata

config = context.config


def _run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    connection = config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "run migrations through gateway.store.migrate (lockgate db upgrade), "
            "which passes the database connection"
        )
    _run_online(connection)

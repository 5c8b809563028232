"""The store: SQLAlchemy 2 tables, repositories and Alembic migrations, on SQLite or PostgreSQL.

- :class:`Database` opens a database URL and hands out sessions, one transaction each;
- :mod:`~gateway.store.fact_repository` stores and queries the domain facts;
- :mod:`~gateway.store.inbox` and :mod:`~gateway.store.outbox` make messaging idempotent and
  transactional;
- :mod:`~gateway.store.desired` keeps the derived state for the sync engine;
- :mod:`~gateway.store.device_records` keeps what devices confirmed, their jobs and events;
- :mod:`~gateway.store.migrate` creates and upgrades the schema.

Repositories are modules of functions that take the caller's session, so one command writes
its facts, its inbox record and its outbox messages in one transaction::

    with db.session() as s:
        if inbox.lookup(s, request_id) is None:
            fact_repository.put(s, fact)
            outbox.append(s, topic, payload)
            inbox.record(s, request_id, kind, response, received_at)
"""

from __future__ import annotations

from gateway.store import desired, device_records, fact_repository, inbox, outbox
from gateway.store.database import Database, DatabaseUrlError, default_sqlite_url
from gateway.store.desired import (
    StoredBlacklist,
    StoredControllerState,
    StoredCredentialState,
)
from gateway.store.inbox import InboxEntry
from gateway.store.migrate import (
    MigrationError,
    SchemaNotCurrent,
    check_up_to_date,
    current,
    downgrade,
    head,
    upgrade,
)
from gateway.store.outbox import OutboxMessage

__all__ = [
    "Database",
    "DatabaseUrlError",
    "InboxEntry",
    "MigrationError",
    "OutboxMessage",
    "SchemaNotCurrent",
    "StoredBlacklist",
    "StoredControllerState",
    "StoredCredentialState",
    "check_up_to_date",
    "current",
    "default_sqlite_url",
    "desired",
    "device_records",
    "downgrade",
    "fact_repository",
    "head",
    "inbox",
    "outbox",
    "upgrade",
]

"""The fact journal: one row per fact written or deleted, in commit order.

Every process that changes facts (the service, a CLI command, an import) appends to it in the
same transaction as the change. A process holding a rules engine in memory reads the entries
after the last sequence it saw and reloads those facts, so several processes can share one
database without their engines drifting apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from gateway.store.bulk import COPY_FROM, BulkInsert
from gateway.store.remembered import read_together, remembered
from gateway.store.tables import fact_journal

_HEAD_KEY = "journal-head"
_HEAD = select(func.coalesce(func.max(fact_journal.c.seq), 0))
read_together(_HEAD_KEY, [_HEAD.scalar_subquery()], lambda row: int(row[0]))


@dataclass(frozen=True, slots=True)
class JournalEntry:
    seq: int
    kind: str
    key: tuple[str, ...]
    deleted: bool
    at: datetime


def head(session: Session) -> int:
    """The sequence of the newest entry (0 when empty); remembered from an earlier write
    transaction of this process when nothing else can have appended since
    (:mod:`gateway.store.remembered`)."""
    kept = remembered(session)
    top: int | None = kept.get(_HEAD_KEY)
    if top is None:
        top = kept[_HEAD_KEY] = int(session.connection().execute(_HEAD).scalar_one())
    return top


_INSERT = insert(fact_journal).returning(fact_journal.c.seq)
_INSERT_MANY = BulkInsert(fact_journal)
# The last value the connection's own inserts took, whichever others took since.
_LAST_TAKEN = {
    "postgresql": text("SELECT currval(pg_get_serial_sequence('fact_journal', 'seq'))"),
    "sqlite": text("SELECT last_insert_rowid()"),
}


def append(
    session: Session, entries: Sequence[tuple[str, tuple[str, ...], bool]], at: datetime
) -> int:
    """Append ``(fact type name, fact key, deleted)`` entries; return the new head.

    A few entries are one ``INSERT .. RETURNING``. From :data:`~gateway.store.bulk.COPY_FROM`
    entries on they go through :class:`~gateway.store.bulk.BulkInsert` (a COPY on
    PostgreSQL), which returns nothing, and the head is the last sequence value the
    connection took: the entries take theirs in order, in one statement, and the last is the
    highest (SQLAlchemy's multi-row ``RETURNING`` cost more than both statements together)."""
    if not entries:
        return head(session)
    rows = [{"kind": k, "key": list(key), "deleted": d, "at": at} for k, key, d in entries]
    conn = session.connection()
    last_taken = _LAST_TAKEN.get(conn.dialect.name)
    if len(rows) >= COPY_FROM and last_taken is not None:
        _INSERT_MANY.execute(conn, rows)
        top = int(conn.execute(last_taken).scalar_one())
    else:
        top = max(int(r[0]) for r in conn.execute(_INSERT, rows))
    remembered(session)[_HEAD_KEY] = top
    return top


def since(session: Session, seq: int, *, limit: int | None = None) -> list[JournalEntry]:
    """Entries after ``seq``, oldest first."""
    stmt = select(fact_journal).where(fact_journal.c.seq > seq).order_by(fact_journal.c.seq)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [
        JournalEntry(r.seq, r.kind, tuple(r.key), r.deleted, r.at)
        for r in session.connection().execute(stmt).all()
    ]


def prune(session: Session, before: datetime) -> int:
    """Delete entries written before ``before`` but never the newest one (the head)."""
    top = head(session)
    result = session.connection().execute(
        delete(fact_journal).where(fact_journal.c.at < before, fact_journal.c.seq < top)
    )
    return int(result.rowcount or 0)

"""The fact journal: entries in order, and the head each append returns, for a lone change and
for a batch (a COPY on PostgreSQL), with another writer taking sequence values in between."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, insert

from gateway.store import Database, journal, upgrade
from gateway.store.bulk import COPY_FROM
from gateway.store.tables import fact_journal

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def entries(prefix: str, n: int) -> list[tuple[str, tuple[str, ...], bool]]:
    return [("Person", (prefix, str(i)), i % 3 == 0) for i in range(n)]


@pytest.mark.parametrize("n", [1, COPY_FROM - 1, COPY_FROM, 3 * COPY_FROM])
def test_append_returns_the_head_and_keeps_the_entries_in_order(clean_db: Database, n: int) -> None:
    with clean_db.session() as s:
        before = journal.head(s)
        top = journal.append(s, entries("a", n), NOW)
        assert journal.head(s) == top
    with clean_db.session(readonly=True) as s:
        assert journal.head(s) == top
        written = journal.since(s, before)
    assert [e.seq for e in written] == sorted(e.seq for e in written)
    assert written[-1].seq == top
    assert [(e.kind, e.key, e.deleted, e.at) for e in written] == [
        (kind, key, deleted, NOW) for kind, key, deleted in entries("a", n)
    ]


@pytest.mark.postgres
def test_a_batchs_head_is_its_own_while_another_connection_takes_sequence_values(
    pg_url: str,
) -> None:
    """Write sessions take turns, but the sequence is shared with any connection: one that
    inserts journal rows (outside the write lock) between this transaction's appends does not
    change the head an append returns. (SQLite has one writer at a time.)"""
    upgrade(pg_url)
    db = Database(pg_url)
    outside = create_engine(pg_url)
    insert_one = insert(fact_journal).values(kind="Person", key=["other"], deleted=False, at=NOW)
    try:
        with db.session() as mine:
            first = journal.append(mine, entries("mine", 2), NOW)
            with outside.begin() as other:
                other.execute(insert_one)
            second = journal.append(mine, entries("mine-2", 2 * COPY_FROM), NOW)
            with outside.begin() as other:
                other.execute(insert_one)
        with db.session(readonly=True) as s:
            written = journal.since(s, 0)
    finally:
        outside.dispose()
        db.dispose()
    by_prefix: dict[str, list[int]] = {}
    for e in written:
        by_prefix.setdefault(e.key[0], []).append(e.seq)
    assert max(by_prefix["mine"]) == first
    assert max(by_prefix["mine-2"]) == second
    assert len(by_prefix["other"]) == 2 and max(by_prefix["other"]) > second

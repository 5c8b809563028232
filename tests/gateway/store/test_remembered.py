"""Values remembered between write transactions (journal head, audit head, operators): used
when nothing can have changed them, read again whenever something could have."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, insert
from sqlalchemy.orm import Session

from gateway.audit import log as audit
from gateway.auth import operators
from gateway.auth.authorizer import Authorizer, Forbidden
from gateway.auth.passwords import hash_token, new_token
from gateway.store import Database, journal
from gateway.store.tables import fact_journal

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def _append(s: Session, actor: str, n: int = 1) -> tuple[int, audit.Entry]:
    """Append ``n`` journal entries and one audit entry; return the journal head and entry."""
    top = journal.append(s, [("Person", (f"{actor}-{i}",), False) for i in range(n)], NOW)
    return top, audit.append(s, at=NOW, actor=actor, action="test.append")


def _stored_head(db: Database) -> int:
    """The journal head as stored (a read-only transaction remembers nothing)."""
    with db.session(readonly=True) as s:
        return journal.head(s)


def _check_chain(db: Database) -> None:
    with db.session(readonly=True) as s:
        result = audit.verify(s)
    assert result.ok, result.problem


@contextlib.contextmanager
def _statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_a_write_transaction_reads_no_head_the_one_before_left(clean_db: Database) -> None:
    with clean_db.session() as s:
        first_top, first = _append(s, "first")
    with _statements(clean_db) as seen, clean_db.session() as s:
        top = journal.head(s)
        entry = audit.append(s, at=NOW, actor="second", action="test.append")
    heads = [q for q in seen if q.startswith("SELECT") and ("fact_journal" in q or "audit" in q)]
    if clean_db.dialect == "sqlite":
        assert heads == []
        assert "PRAGMA data_version" in seen
        # the pragmas are set once per connection, not before every BEGIN
        assert not [q for q in seen if "query_only" in q or "foreign_keys" in q]
    else:
        # PostgreSQL reads them in every transaction, both in one statement
        assert len(heads) == 1
        assert "fact_journal" in heads[0]
        assert "audit_entry" in heads[0]
    assert (top, entry.seq, entry.prev_hash) == (first_top, first.seq + 1, first.hash)
    _check_chain(clean_db)


def test_another_writer_between_two_transactions_is_seen(clean_db: Database) -> None:
    with clean_db.session() as s:
        _append(s, "first")
    other = Database(clean_db.url)  # another process's connection
    try:
        with other.session() as s:
            other_top, other_entry = _append(s, "other", 3)
    finally:
        other.dispose()
    with _statements(clean_db) as seen, clean_db.session() as s:
        assert journal.head(s) == other_top
        top, entry = _append(s, "again")
    # both heads read again, in one statement
    heads = [q for q in seen if q.startswith("SELECT") and ("fact_journal" in q or "audit" in q)]
    assert len(heads) == 1
    assert "audit_entry" in heads[0]
    assert top > other_top
    assert (entry.seq, entry.prev_hash) == (other_entry.seq + 1, other_entry.hash)
    _check_chain(clean_db)


def test_another_transaction_on_the_same_connection_is_seen(clean_db: Database) -> None:
    with clean_db.session() as s:
        top, _ = _append(s, "first")
        used = s.connection().connection.dbapi_connection
    # Another unit of work of the same process, on the very same pooled connection (so the
    # connection's data_version does not tell), appends to the journal.
    with clean_db.begin() as conn:
        assert conn.connection.dbapi_connection is used
        conn.execute(insert(fact_journal).values(kind="Person", key=["x"], deleted=False, at=NOW))
    with clean_db.session() as s:
        assert s.connection().connection.dbapi_connection is used
        assert journal.head(s) == _stored_head(clean_db) > top


class _Refused(Exception):
    pass


def test_a_rolled_back_transaction_leaves_nothing_behind(clean_db: Database) -> None:
    with clean_db.session() as s:
        kept_top, kept = _append(s, "first")

    def undone() -> None:
        with clean_db.session() as s:
            _append(s, "undone", 2)
            audit.flush(s)
            raise _Refused

    with pytest.raises(_Refused):
        undone()
    with clean_db.session() as s:
        assert journal.head(s) == kept_top
        top, entry = _append(s, "after")
    assert top == _stored_head(clean_db) > kept_top
    assert (entry.seq, entry.prev_hash) == (kept.seq + 1, kept.hash)
    _check_chain(clean_db)


def test_a_rolled_back_savepoint_forgets_what_it_wrote(clean_db: Database) -> None:
    with clean_db.session() as s:
        _append(s, "first")
    with clean_db.session() as s:
        top, before = _append(s, "before")
        with contextlib.suppress(_Refused), s.begin_nested():
            _append(s, "undone", 2)
            raise _Refused
        assert journal.head(s) == top
        _, after = _append(s, "after")
    assert (after.seq, after.prev_hash) == (before.seq + 1, before.hash)
    with clean_db.session() as s:
        assert journal.head(s) == _stored_head(clean_db) > top
        _, last = _append(s, "last")
    assert (last.seq, last.prev_hash) == (after.seq + 1, after.hash)
    _check_chain(clean_db)


def _operator(s: Session, name: str) -> None:
    operators.add(
        s,
        name=name,
        role="administrator",
        token_hash=hash_token(new_token()),
        created_by="test",
        at=NOW,
    )


@pytest.mark.parametrize("where", ["another process", "this process"])
def test_a_changed_operator_is_seen_by_the_next_transaction(clean_db: Database, where: str) -> None:
    authorizer = Authorizer()
    with clean_db.session() as s:
        _operator(s, "admin")
        _operator(s, "central")
    with clean_db.session() as s:
        assert authorizer.operator(s, "central").active
    other = Database(clean_db.url) if where == "another process" else clean_db
    try:
        with other.session() as s:
            operators.change(s, "central", at=NOW, active=False)
    finally:
        if other is not clean_db:
            other.dispose()
    with pytest.raises(Forbidden, match="disabled"), clean_db.session() as s:
        authorizer.operator(s, "central")


def test_an_operator_changed_in_the_transaction_that_remembers_it_is_not_kept(
    clean_db: Database,
) -> None:
    authorizer = Authorizer()
    with clean_db.session() as s:
        _operator(s, "admin")
        _operator(s, "central")
    with clean_db.session() as s:
        authorizer.operator(s, "central")
        operators.change(s, "central", at=NOW, active=False)
    with pytest.raises(Forbidden, match="disabled"), clean_db.session() as s:
        authorizer.operator(s, "central")

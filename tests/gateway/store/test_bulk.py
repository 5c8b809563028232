"""BulkInsert stores exactly what SQLAlchemy's own executemany of the same rows stores, on
SQLite and PostgreSQL, and is one statement for many rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, MetaData, String, Table, delete, event, insert, select
from sqlalchemy.exc import DataError, IntegrityError

from gateway.store.bulk import COPY_FROM, BulkInsert
from gateway.store.database import Database
from gateway.store.tables import credential_state, inbox

# No NUL character: PostgreSQL's JSONB cannot hold one (check_json_object refuses it before).
texts = st.text(st.characters(exclude_characters="\x00"), max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner),
    max_leaves=6,
)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))]),
)
rows = st.lists(
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["credential/activate", "visitor/card"]),
            "response": st.dictionaries(texts, json_values, max_size=3),
            "received_at": instants,
            "digest": st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
        }
    ),
    min_size=1,
    max_size=40,  # on PostgreSQL, COPY_FROM rows and more are a COPY
)


def stored(db: Database) -> list[tuple[Any, ...]]:
    with db.session(readonly=True) as s:
        return [tuple(r) for r in s.execute(select(inbox).order_by(inbox.c.request_id))]


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=rows)
def test_rows_are_stored_as_sqlalchemys_executemany_stores_them(
    clean_db: Database, batch: list[dict[str, Any]]
) -> None:
    for i, row in enumerate(batch):
        row["request_id"] = f"r{i:03d}"
    with clean_db.session() as s:
        s.execute(delete(inbox))
        s.connection().execute(insert(inbox), batch)
    expected = stored(clean_db)
    with clean_db.session() as s:
        s.execute(delete(inbox))
        BulkInsert(inbox).execute(s.connection(), batch)
    assert stored(clean_db) == expected


def test_many_rows_are_one_statement_and_none_is_no_statement(clean_db: Database) -> None:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    at = datetime(2026, 12, 5, tzinfo=UTC)
    batch = [
        {
            "request_id": f"r{i}",
            "kind": "k",
            "response": {"i": i},
            "received_at": at,
            "digest": None,
        }
        for i in range(50)
    ]
    bulk = BulkInsert(inbox)
    event.listen(clean_db.engine, "before_cursor_execute", count)
    try:
        with clean_db.session() as s:
            conn = s.connection()
            statements.clear()
            bulk.execute(conn, batch)
            bulk.execute(conn, [])
            assert len(statements) == 1
            assert statements[0].startswith(
                "COPY" if clean_db.dialect == "postgresql" else "INSERT"
            )
    finally:
        event.remove(clean_db.engine, "before_cursor_execute", count)
    assert len(stored(clean_db)) == 50


@pytest.mark.parametrize("size", [2, COPY_FROM])
def test_a_duplicate_key_raises_sqlalchemys_integrity_error_and_stores_nothing(
    clean_db: Database, size: int
) -> None:
    at = datetime(2026, 12, 5, tzinfo=UTC)
    row = {"request_id": "same", "kind": "k", "response": {}, "received_at": at, "digest": None}
    with pytest.raises(IntegrityError, match="same"), clean_db.session() as s:
        BulkInsert(inbox).execute(s.connection(), [row] * size)
    assert stored(clean_db) == []


def test_a_naive_instant_is_refused_as_by_the_column_type(clean_db: Database) -> None:
    row = {"request_id": "r", "kind": "k", "response": {}, "digest": None}
    with pytest.raises(ValueError, match="naive datetime"), clean_db.session() as s:
        BulkInsert(inbox).execute(s.connection(), [{**row, "received_at": datetime(2026, 1, 1)}])
    assert stored(clean_db) == []


def test_an_unknown_column_is_refused(clean_db: Database) -> None:
    with pytest.raises(ValueError, match="inbox has no column nope"), clean_db.session() as s:
        BulkInsert(inbox).execute(s.connection(), [{"request_id": "r", "nope": 1}])


states = st.lists(
    st.fixed_dictionaries(
        {
            "number": st.sampled_from([f"K{i}" for i in range(30)]),
            "kind": st.sampled_from(["key", "card"]),
            "revision": texts,
            "active": st.booleans(),
            "body": st.dictionaries(texts, json_values, max_size=3),
            "computed_at": instants,
        }
    ),
    min_size=1,
    max_size=45,  # keys repeat within a batch; on PostgreSQL, COPY_FROM rows and more are staged
)


def stored_states(db: Database) -> list[tuple[Any, ...]]:
    with db.session(readonly=True) as s:
        query = select(credential_state).order_by(credential_state.c.number)
        return [tuple(r) for r in s.execute(query)]


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=states, batch=states)
def test_an_upsert_stores_what_sqlalchemys_executemany_of_it_stores(
    clean_db: Database, before: list[dict[str, Any]], batch: list[dict[str, Any]]
) -> None:
    """Whatever the batch holds (a key many times, a text the database refuses): the same
    rows stored, or the same error and nothing changed."""
    bulk = BulkInsert(credential_state, upsert=["number"])
    dialect = clean_db.dialect
    with clean_db.session() as s:
        s.execute(delete(credential_state))
    try:
        with clean_db.session() as s:
            s.connection().execute(bulk.statement(dialect), before)
    except (UnicodeEncodeError, DataError):
        pass
    start = stored_states(clean_db)
    outcomes: list[object] = []
    for write in (
        lambda conn: conn.execute(bulk.statement(dialect), batch),
        lambda conn: bulk.execute(conn, batch),
    ):
        try:
            with clean_db.session() as s:
                write(s.connection())
            outcomes.append(stored_states(clean_db))
        except (UnicodeEncodeError, DataError) as err:
            outcomes.append(type(err))
            assert stored_states(clean_db) == start
        with clean_db.session() as s:  # back to the start for the next
            s.execute(delete(credential_state))
            if start:
                s.connection().execute(bulk.statement(dialect), before)
    assert outcomes[0] == outcomes[1]


def test_an_upsert_of_key_columns_alone_keeps_the_first_and_twice_in_a_transaction(
    clean_db: Database,
) -> None:
    """``DO NOTHING`` when the table has no other column; a second batch in the same
    transaction finds the staging table empty again."""
    keys_only = Table(
        "bulk_test_keys_only",
        MetaData(),
        Column("a", String(10), primary_key=True),
        Column("b", String(10), primary_key=True),
    )
    keys_only.create(clean_db.engine)
    try:
        bulk = BulkInsert(keys_only, upsert=["a", "b"])
        first = [{"a": f"x{i % 20}", "b": "y"} for i in range(3 * COPY_FROM)]
        second = [{"a": f"z{i}", "b": "y"} for i in range(COPY_FROM)] + first
        with clean_db.session() as s:
            bulk.execute(s.connection(), first)
            bulk.execute(s.connection(), second)
        with clean_db.session(readonly=True) as s:
            got = sorted(tuple(r) for r in s.execute(select(keys_only)))
        assert got == sorted({(r["a"], r["b"]) for r in first + second})
    finally:
        keys_only.drop(clean_db.engine)


def test_two_upserts_in_one_transaction_each_store_their_own_rows(clean_db: Database) -> None:
    bulk = BulkInsert(credential_state, upsert=["number"])
    at = datetime(2026, 12, 5, tzinfo=UTC)

    def batch(revision: str, numbers: range) -> list[dict[str, Any]]:
        return [
            {
                "number": f"K{i}",
                "kind": "key",
                "revision": revision,
                "active": True,
                "body": {},
                "computed_at": at,
            }
            for i in numbers
        ]

    with clean_db.session() as s:
        bulk.execute(s.connection(), batch("a", range(2 * COPY_FROM)))
        bulk.execute(s.connection(), batch("b", range(COPY_FROM)))
    revisions = {row[0]: row[2] for row in stored_states(clean_db)}
    assert revisions == {f"K{i}": "b" if i < COPY_FROM else "a" for i in range(2 * COPY_FROM)}


def test_an_upsert_needs_its_keys(clean_db: Database) -> None:
    with pytest.raises(ValueError, match="no key columns nope"):
        BulkInsert(credential_state, upsert=["nope"])
    bulk = BulkInsert(credential_state, upsert=["number"])
    with pytest.raises(ValueError, match="every row needs number"), clean_db.session() as s:
        bulk.execute(s.connection(), [{"kind": "key"}])

"""The generic repository: get, list, delete and upsert by one key column or several."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Row, String, Table, create_engine
from sqlalchemy.orm import Session

from gateway.store.repository import Repository

META = MetaData()
PAIRS = Table(
    "pairs",
    META,
    Column("kind", String, primary_key=True),
    Column("name", String, primary_key=True),
    Column("value", Integer, nullable=False),
)


def _pair(row: Row[Any]) -> tuple[str, str, int]:
    return row.kind, row.name, row.value


def test_rows_are_found_listed_replaced_and_deleted_by_their_whole_key() -> None:
    engine = create_engine("sqlite://")
    META.create_all(engine)
    repo = Repository(PAIRS, ("kind", "name"), _pair)
    with Session(engine) as s:
        repo.upsert(
            s, [{"kind": "b", "name": "x", "value": 1}, {"kind": "a", "name": "y", "value": 2}]
        )
        repo.upsert(s, {"kind": "a", "name": "x", "value": 3})
        assert repo.get(s, "a", "x") == ("a", "x", 3)
        assert repo.get(s, "a", "z") is None
        assert repo.all(s) == [("a", "x", 3), ("a", "y", 2), ("b", "x", 1)]  # by the key
        repo.upsert(s, {"kind": "a", "name": "x", "value": 4})  # replaces, keeps the key
        assert repo.get(s, "a", "x") == ("a", "x", 4)
        assert repo.delete(s, "a", "x") == 1
        assert repo.delete(s, "a", "x") == 0
        assert [p[:2] for p in repo.all(s)] == [("a", "y"), ("b", "x")]
        row = repo.row(s, "b", "x")
        assert row is not None and row.value == 1


def test_a_key_of_the_wrong_length_is_refused_naming_the_key_columns() -> None:
    engine = create_engine("sqlite://")
    META.create_all(engine)
    repo = Repository(PAIRS, ("kind", "name"), _pair)
    with Session(engine) as s, pytest.raises(TypeError, match="pairs is keyed by kind, name"):
        repo.get(s, "a")

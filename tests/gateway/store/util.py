"""Helpers shared by the store tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from gateway.store import Database
from gateway.store.tables import metadata


def empty(database: Database) -> None:
    """Delete every row of every lockgate table."""
    with database.session() as s:
        for table in reversed(metadata.sorted_tables):
            s.execute(table.delete())


class _Discard(Exception):
    pass


@contextlib.contextmanager
def rolled_back(database: Database) -> Iterator[Session]:
    """A write session whose changes are rolled back at the end (the reads inside it still go
    to the database): keeps property tests fast and independent of each other."""
    with contextlib.suppress(_Discard), database.session() as session:
        yield session
        raise _Discard


def assert_identical(stored: Any, original: Any, path: str = "fact") -> None:
    """Equal, and of the same types all the way down: aware UTC datetimes, dates, tuples,
    enums (``==`` alone would accept a list for a tuple or a str for a StrEnum)."""
    assert type(stored) is type(original), f"{path}: {type(stored)} != {type(original)}"
    if isinstance(original, BaseModel):
        for name in type(original).model_fields:
            assert_identical(getattr(stored, name), getattr(original, name), f"{path}.{name}")
    elif isinstance(original, tuple):
        assert len(stored) == len(original), path
        for i, (a, b) in enumerate(zip(stored, original, strict=True)):
            assert_identical(a, b, f"{path}[{i}]")
    elif isinstance(original, datetime):
        assert stored == original, path
        assert stored.tzinfo is UTC, f"{path}: {stored.tzinfo!r} is not UTC"
    elif isinstance(original, Enum):
        assert stored is original, path
    else:
        assert stored == original, path

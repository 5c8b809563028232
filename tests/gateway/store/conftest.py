"""Fixtures of the store tests: a migrated database on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.store import Database, upgrade


@pytest.fixture
def migrated_url(db_url: str) -> str:
    """URL of a database (SQLite file, then a fresh PostgreSQL database) at schema head."""
    upgrade(db_url)
    return db_url


@pytest.fixture
def db(migrated_url: str) -> Iterator[Database]:
    """A :class:`Database` on the migrated database, disposed after the test."""
    database = Database(migrated_url)
    try:
        yield database
    finally:
        database.dispose()

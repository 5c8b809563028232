"""Fixtures of the store tests: migrated databases on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gateway.store import Database, upgrade
from tests.gateway.store.util import empty


@pytest.fixture
def migrated_url(db_url: str) -> str:
    """URL of a database (SQLite file, then a fresh PostgreSQL database) at schema head."""
    upgrade(db_url)
    return db_url


@pytest.fixture
def db(migrated_url: str) -> Iterator[Database]:
    """A :class:`Database` on a fresh migrated database, disposed after the test."""
    database = Database(migrated_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def module_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database shared by the tests of one module (migrating costs more than
    emptying the tables); use it through :func:`clean_db`."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('store')}/lockgate.db"
        upgrade(url)
        yield url
        return
    server: str = request.getfixturevalue("pg_server")
    name = f"lockgate_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def clean_db(module_url: str) -> Iterator[Database]:
    """A :class:`Database` on the module's database with every table emptied, disposed after
    the test."""
    database = Database(module_url)
    try:
        empty(database)
        yield database
    finally:
        database.dispose()

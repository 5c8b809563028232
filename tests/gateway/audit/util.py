"""Helpers of the audit, auth, retention and review tests: a clock, operators, an audited core
loaded with the sample story."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gateway.auth import operators as operator_store
from gateway.auth.operators import Operator
from gateway.auth.passwords import hash_token
from gateway.compose import build_core
from gateway.config import Settings
from gateway.core import Core, Submission
from gateway.runtime import CommitNotifier
from gateway.store import migrate
from gateway.store.database import Database
from gateway.store.tables import metadata
from tests import sample

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
LOADER = "loader"


class Clock:
    """A settable clock for the core."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now = self.now + delta
        return self.now


@contextmanager
def database(url: str) -> Iterator[Database]:
    migrate.upgrade(url)
    db = Database(url)
    try:
        yield db
    finally:
        db.dispose()


def empty(db: Database) -> None:
    """Delete every row of every table."""
    with db.session() as s:
        for table in reversed(metadata.sorted_tables):
            s.execute(table.delete())


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def shared_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database (SQLite, then PostgreSQL) shared by the tests of one module;
    use it through :func:`db`, which empties it first."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('audit')}/lockgate.db"
        migrate.upgrade(url)
        yield url
        return
    server: str = request.getfixturevalue("pg_server")
    name = f"lockgate_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def db(shared_url: str) -> Iterator[Database]:
    """The module's database, emptied, disposed after the test."""
    database_ = Database(shared_url)
    try:
        empty(database_)
        yield database_
    finally:
        database_.dispose()


def add_operator(
    db: Database,
    name: str,
    role: str,
    *,
    title: str | None = None,
    display_name: str | None = None,
    token: str | None = None,
    password_hash: str | None = None,
    at: datetime = NOW,
) -> Operator:
    """An operator straight in the store (a token hash is fast to make; Argon2 is not)."""
    with db.session() as s:
        return operator_store.add(
            s,
            name=name,
            role=role,
            title=title,
            display_name=display_name,
            token_hash=hash_token(token or f"token-of-{name}") if password_hash is None else None,
            password_hash=password_hash,
            created_by="test",
            at=at,
        )


def audited_core(
    db: Database,
    clock: Clock,
    *,
    settings: Settings | None = None,
    load_sample: bool = True,
    today: date = TODAY,
) -> Core:
    """A core with the audit installed; with ``load_sample``, the sample story loaded by the
    operator ``loader`` (role system)."""
    core = build_core(
        settings or Settings(), db=db, clock=clock, sync=False, listeners=[CommitNotifier()]
    )
    core.load()
    if load_sample:
        with db.session() as s:
            if operator_store.get(s, LOADER) is None:
                operator_store.add(
                    s,
                    name=LOADER,
                    role="system",
                    token_hash=hash_token("loader-token"),
                    created_by="test",
                    at=clock(),
                )
        core.submit_many(
            [Submission(c, LOADER) for c in sample.sample_commands(today)], atomic=True
        )
    return core

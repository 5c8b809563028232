"""Database: URL handling, SQLite connection settings, transactions and write serialisation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gateway.leadership import LeaseStore
from gateway.store import Database, DatabaseUrlError, default_sqlite_url, desired, outbox, upgrade
from gateway.store.database import normalize_url
from gateway.store.tables import controller_state

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- urls


@pytest.mark.parametrize(
    ("given", "driver", "database"),
    [
        ("sqlite:///relative.db", "sqlite+pysqlite", "relative.db"),
        ("sqlite:////var/lib/lockgate/x.db", "sqlite+pysqlite", "/var/lib/lockgate/x.db"),
        ("sqlite+pysqlite:////x.db", "sqlite+pysqlite", "/x.db"),
        ("postgresql://u:p@db:5432/lockgate", "postgresql+psycopg", "lockgate"),
        ("postgres://u@db/lockgate", "postgresql+psycopg", "lockgate"),
        ("postgresql+psycopg://u@db/lockgate", "postgresql+psycopg", "lockgate"),
    ],
)
def test_accepted_urls_map_to_the_supported_drivers(given: str, driver: str, database: str) -> None:
    url = normalize_url(given)
    assert url.drivername == driver
    assert url.database == database


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("sqlite://", "file path"),
        ("sqlite:///:memory:", "file path"),
        ("sqlite+aiosqlite:///x.db", "aiosqlite"),
        ("postgresql+psycopg2://u@db/x", "psycopg2"),
        ("postgresql://u@db", "database name"),
        ("mysql://u@db/x", "mysql"),
        ("not a url", "cannot be parsed"),
        ("sqlite:////no/such/folder/lockgate.db", "the folder /no/such/folder does not exist"),
    ],
)
def test_unusable_urls_are_refused_with_the_reason(given: str, reason: str) -> None:
    with pytest.raises(DatabaseUrlError, match=reason) as info:
        Database(given)
    assert str(info.value).startswith("database url: ")


def test_default_sqlite_url_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = default_sqlite_url("data/lockgate.db")
    assert url == f"sqlite+pysqlite:///{tmp_path}/data/lockgate.db"
    assert normalize_url(url).database == f"{tmp_path}/data/lockgate.db"


def test_repr_hides_the_password() -> None:
    database = Database("postgresql://lockgate:secret@db.example/lockgate")
    try:
        assert "secret" not in repr(database)
        assert database.dialect == "postgresql"
        assert database.url.startswith("postgresql+psycopg://")
    finally:
        database.dispose()


# --------------------------------------------------------------------------- sqlite settings


def test_sqlite_connections_use_wal_full_sync_foreign_keys_and_busy_timeout(
    sqlite_url: str,
) -> None:
    database = Database(sqlite_url)
    try:
        assert database.dialect == "sqlite"
        with database.session() as s:
            pragma = {
                name: s.execute(text(f"PRAGMA {name}")).scalar_one()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
        assert pragma == {
            "journal_mode": "wal",
            "synchronous": 2,  # FULL
            "foreign_keys": 1,
            "busy_timeout": 10000,
        }
    finally:
        database.dispose()


def test_sqlite_modes_follow_each_transaction_on_one_connection(sqlite_url: str) -> None:
    # The pragmas are set only when a transaction needs another mode than the connection's
    # last one: every kind of transaction, one after the other on the same connection.
    upgrade(sqlite_url)
    database = Database(sqlite_url)
    row = {"controller_id": "c", "revision": "r", "body": {}, "computed_at": NOW}
    fk = text("PRAGMA foreign_keys")
    try:
        with database.session() as s:
            used = s.connection().connection.dbapi_connection
            assert s.execute(fk).scalar_one() == 1
        for _ in range(2):
            with database.session(readonly=True) as s:
                assert s.connection().connection.dbapi_connection is used
                with pytest.raises(DBAPIError, match=r"(?i)read.?only"), s.begin_nested():
                    s.execute(insert(controller_state).values(row))
            with database.begin(schema_change=True) as conn:
                assert conn.connection.dbapi_connection is used
                assert conn.execute(fk).scalar_one() == 0
            with database.begin(schema_change=True) as conn:
                assert conn.execute(fk).scalar_one() == 0
            with database.session() as s:
                assert s.connection().connection.dbapi_connection is used
                assert s.execute(fk).scalar_one() == 1
                s.execute(insert(controller_state).values(row))
                s.execute(delete(controller_state))
            with database.session() as s:
                assert s.execute(fk).scalar_one() == 1
                with pytest.raises(DBAPIError, match=r"(?i)foreign key"), s.begin_nested():
                    s.execute(text("INSERT INTO space_cylinder VALUES ('no-such-space', '1', 0)"))
    finally:
        database.dispose()


def test_foreign_keys_are_enforced(clean_db: Database) -> None:
    with pytest.raises(DBAPIError, match=r"(?i)foreign key"), clean_db.session() as s:
        s.execute(text("INSERT INTO space_cylinder VALUES ('no-such-space', '1', 0)"))


# --------------------------------------------------------------------------- transactions


def _controller(cid: str, n: int) -> desired.StoredControllerState:
    return desired.StoredControllerState(cid, f"r{n}", {"n": n}, NOW)


def test_a_session_commits_on_exit_and_rolls_back_on_exception(clean_db: Database) -> None:
    with clean_db.session() as s:
        desired.put_controller_state(s, _controller("kept", 1))

    def fail() -> None:
        with clean_db.session() as s:
            desired.put_controller_state(s, _controller("lost", 1))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    with clean_db.session(readonly=True) as s:
        assert [c.controller_id for c in desired.all_controller_states(s)] == ["kept"]


def test_an_uncommitted_write_is_invisible_to_other_sessions(clean_db: Database) -> None:
    with clean_db.session() as writer:
        desired.put_controller_state(writer, _controller("c1", 1))
        with clean_db.session(readonly=True) as reader:
            assert desired.get_controller_state(reader, "c1") is None
        assert desired.get_controller_state(writer, "c1") is not None
    with clean_db.session(readonly=True) as reader:
        assert desired.get_controller_state(reader, "c1") is not None


def test_a_readonly_session_reads_one_snapshot(clean_db: Database) -> None:
    count = select(func.count()).select_from(controller_state)
    with clean_db.session(readonly=True) as reader:
        assert reader.execute(count).scalar_one() == 0  # the snapshot starts here
        with clean_db.session() as writer:
            desired.put_controller_state(writer, _controller("c1", 1))
        assert reader.execute(count).scalar_one() == 0
    with clean_db.session(readonly=True) as reader:
        assert reader.execute(count).scalar_one() == 1


def test_a_readonly_session_refuses_to_write(clean_db: Database) -> None:
    row = {"controller_id": "c", "revision": "r", "body": {}, "computed_at": NOW}
    with pytest.raises(DBAPIError, match=r"(?i)read.?only"), clean_db.session(readonly=True) as s:
        s.execute(insert(controller_state).values(row))
    # The connection goes back to the pool in write mode for the next session.
    with clean_db.session() as s:
        s.execute(insert(controller_state).values(row))


def test_savepoints_roll_back_inside_a_transaction(clean_db: Database) -> None:
    def fail(s: Session) -> None:
        with s.begin_nested():
            desired.put_controller_state(s, _controller("inner", 1))
            raise RuntimeError("boom")

    with clean_db.session() as s:
        desired.put_controller_state(s, _controller("outer", 1))
        with pytest.raises(RuntimeError, match="boom"):
            fail(s)
    with clean_db.session(readonly=True) as s:
        assert [c.controller_id for c in desired.all_controller_states(s)] == ["outer"]


def test_write_sessions_are_serialised(clean_db: Database) -> None:
    """A second writer waits until the first commits, so its read sees the first's write."""
    first_has_read = threading.Event()
    seen_by_second: list[int] = []

    def second() -> None:
        first_has_read.wait(5)
        with clean_db.session() as s:
            stored = desired.get_controller_state(s, "counter")
            seen_by_second.append(-1 if stored is None else stored.body["n"])

    with clean_db.session() as s:
        desired.put_controller_state(s, _controller("counter", 0))
    thread = threading.Thread(target=second, name="second-writer")
    thread.start()
    try:
        with clean_db.session() as s:
            stored = desired.get_controller_state(s, "counter")
            assert stored is not None
            first_has_read.set()
            time.sleep(0.3)  # the second writer is blocked meanwhile
            assert not seen_by_second
            desired.put_controller_state(s, _controller("counter", stored.body["n"] + 1))
    finally:
        first_has_read.set()
        thread.join(10)
    assert seen_by_second == [1]


def test_concurrent_read_modify_writes_lose_no_update(clean_db: Database) -> None:
    writers, rounds = 4, 15
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(rounds):
                with clean_db.session() as s:
                    stored = desired.get_controller_state(s, "counter")
                    n = 0 if stored is None else int(stored.body["n"])
                    time.sleep(0.001)  # widen the window a lost update would need
                    desired.put_controller_state(s, _controller("counter", n + 1))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, name=f"writer-{i}") for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    with clean_db.session(readonly=True) as s:
        stored = desired.get_controller_state(s, "counter")
    assert stored is not None
    assert stored.body["n"] == writers * rounds


def test_dispose_leaves_the_database_usable(clean_db: Database) -> None:
    with clean_db.session() as s:
        desired.put_controller_state(s, _controller("c", 1))
    clean_db.dispose()
    with clean_db.session(readonly=True) as s:
        assert desired.get_controller_state(s, "c") is not None


_CHILD = """
import sys
from gateway.leadership import LeaseStore
from gateway.store import Database, outbox
db = Database(sys.argv[1])
while True:
    with db.session() as s:
        message_id = outbox.append(s, "lockgate/test", b"x")
    print(message_id, flush=True)  # acknowledged only after the commit returned
"""


def test_nothing_acknowledged_is_lost_when_the_writer_is_killed(module_url: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, module_url], stdout=subprocess.PIPE, text=True
    )
    acknowledged: list[int] = []
    try:
        assert child.stdout is not None
        while len(acknowledged) < 25:
            line = child.stdout.readline()
            assert line, "the writer died before acknowledging 25 messages"
            acknowledged.append(int(line))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    database = Database(module_url)
    try:
        with database.session(readonly=True) as s:
            stored = {m.id for m in outbox.pending(s, limit=10_000)}
    finally:
        database.dispose()
    assert set(acknowledged) <= stored


def _break_under(dbapi_connection: Any) -> None:
    """Swap the socket of a pooled connection for a pipe nobody reads: a query is still
    sent, and the wait for its answer sees an error without data, as when the server's end
    breaks at that moment."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.dup2(write_end, dbapi_connection.fileno())
    os.close(write_end)


@pytest.mark.postgres
def test_a_pooled_connection_lost_during_the_ping_is_replaced(pg_url: str) -> None:
    """The pool's ping finds the connection lost, which psycopg hides behind a
    ``ProgrammingError`` (it cannot restore ``autocommit``): the pool must still take a new
    connection, and the session work."""
    db = Database(pg_url)
    try:
        with db.session() as s:
            s.execute(text("SELECT 1"))
            dropped = s.connection().connection.dbapi_connection
        _break_under(dropped)
        with db.session() as s:
            assert s.execute(text("SELECT 2")).scalar_one() == 2
            assert s.connection().connection.dbapi_connection is not dropped
    finally:
        db.dispose()


@pytest.mark.postgres
def test_the_leader_lease_replaces_a_connection_lost_during_the_ping(pg_url: str) -> None:
    upgrade(pg_url)
    lease = LeaseStore(pg_url, lease_s=5, lock_timeout_s=1)
    try:
        held = lease.acquire("core-a", "host-a")
        assert held is not None
        with lease.engine.connect() as conn:
            dropped = conn.connection.dbapi_connection
        _break_under(dropped)
        view = lease.read()
        assert view is not None and view.token == held.token
    finally:
        lease.dispose()

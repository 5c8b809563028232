"""Migrations: upgrade, downgrade, revision checks, and the migrated schema == tables.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, select, text

from gateway.domain import Person, Space
from gateway.store import (
    Database,
    MigrationError,
    SchemaNotCurrent,
    check_up_to_date,
    current,
    downgrade,
    head,
    migrate,
    tables,
    upgrade,
)
from gateway.store import fact_repository as facts
from gateway.store.migrate import MIGRATIONS_DIR
from gateway.store.tables import metadata


def _schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _reflected(connection: Connection) -> dict[str, Any]:
    """What compare_metadata does not look at: primary keys and check constraints."""
    inspector = inspect(connection)
    return {
        table: {
            "pk": (
                inspector.get_pk_constraint(table)["name"],
                tuple(inspector.get_pk_constraint(table)["constrained_columns"]),
            ),
            "checks": sorted(c["name"] for c in inspector.get_check_constraints(table)),
        }
        for table in inspector.get_table_names()
        if table != "alembic_version"
    }


def _declared(dialect: str) -> dict[str, Any]:
    declared: dict[str, Any] = {}
    for table in metadata.sorted_tables:
        pk_name = table.primary_key.name
        if dialect == "sqlite" and table.kwargs.get("sqlite_autoincrement"):
            pk_name = None  # INTEGER PRIMARY KEY AUTOINCREMENT is declared inline, unnamed
        declared[table.name] = {
            "pk": (pk_name, tuple(c.name for c in table.primary_key.columns)),
            "checks": sorted(
                str(c.name) for c in table.constraints if c.__class__.__name__ == "CheckConstraint"
            ),
        }
    return declared


def test_the_migrations_ship_inside_the_package() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()
    newest = sorted((MIGRATIONS_DIR / "versions").glob("0*.py"))[-1]
    assert head() == newest.stem


def test_upgrade_from_empty_yields_exactly_the_declared_schema(db_url: str) -> None:
    assert current(db_url) is None
    upgrade(db_url)
    assert current(db_url) == head()
    database = Database(db_url)
    try:
        with database.begin() as connection:
            assert _schema_differences(connection) == []
            assert _reflected(connection) == _declared(database.dialect)
    finally:
        database.dispose()


def test_the_schema_comparison_notices_a_difference(migrated_url: str) -> None:
    database = Database(migrated_url)
    try:
        with database.begin() as connection:
            connection.execute(text("DROP INDEX ix_credential_employment_id"))
            differences = _schema_differences(connection)
            connection.rollback()
    finally:
        database.dispose()
    assert [d[0] for d in differences] == ["add_index"]
    assert differences[0][1].name == "ix_credential_employment_id"


def test_sqlite_outbox_and_journal_ids_use_autoincrement(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    database = Database(sqlite_url)
    try:
        with database.session(readonly=True) as s:
            rows = s.execute(text("SELECT name, sql FROM sqlite_master")).all()
        sql = {name: ddl for name, ddl in rows}
    finally:
        database.dispose()
    assert "INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT" in sql["outbox"]
    assert "INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT" in sql["fact_journal"]


def test_upgrading_twice_is_harmless_and_keeps_the_data(migrated_url: str) -> None:
    database = Database(migrated_url)
    try:
        with database.session() as s:
            facts.put(s, Person(id="p1", first_name="Anna", last_name="Berg"))
        upgrade(migrated_url)
        assert current(migrated_url) == head()
        with database.session(readonly=True) as s:
            assert facts.get(s, Person, "p1") is not None
    finally:
        database.dispose()


def test_downgrade_to_base_removes_every_table(migrated_url: str) -> None:
    downgrade(migrated_url, "base")
    assert current(migrated_url) is None
    database = Database(migrated_url)
    try:
        with database.begin() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
    finally:
        database.dispose()
    upgrade(migrated_url)  # and back up again
    assert current(migrated_url) == head()


def test_the_lease_gets_a_console_url_and_a_lease_taken_before_keeps_working(
    db_url: str,
) -> None:
    """0007_lease_console_url: the leader's console URL, null for a row written before."""
    upgrade(db_url, "0006_site_key_visit")
    database = Database(db_url)
    row = {
        "name": "core",
        "token": 4,
        "holder": "a" * 32,
        "host": "core-a pid 7",
        "at": datetime(2026, 12, 5, 8, 0, tzinfo=UTC),
    }
    try:
        with database.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO leader_lease (name, token, holder, host, acquired_at, expires_at) "
                    "VALUES (:name, :token, :holder, :host, :at, :at)"
                ),
                row,
            )
        upgrade(db_url, "0007_lease_console_url")
        with database.begin() as connection:
            columns = {c["name"]: c for c in inspect(connection).get_columns("leader_lease")}
            assert columns["console_url"]["nullable"]
            kept = connection.execute(select(tables.leader_lease)).one()
            assert (kept.holder, kept.token, kept.console_url) == ("a" * 32, 4, None)
            connection.execute(
                tables.leader_lease.update().values(console_url="https://core-a.example.com/")
            )
        downgrade(db_url, "0006_site_key_visit")
        with database.begin() as connection:
            columns = {c["name"]: c for c in inspect(connection).get_columns("leader_lease")}
            assert "console_url" not in columns
            assert connection.execute(text("SELECT holder, token FROM leader_lease")).one() == (
                "a" * 32,
                4,
            )
        upgrade(db_url)
        assert current(db_url) == head()
    finally:
        database.dispose()


def test_check_up_to_date_tells_the_user_to_upgrade(db_url: str) -> None:
    with pytest.raises(SchemaNotCurrent, match="run `lockgate db upgrade`") as info:
        check_up_to_date(db_url)
    assert info.value.current is None
    assert info.value.head == head()
    upgrade(db_url)
    check_up_to_date(db_url)


def test_check_up_to_date_recognises_a_schema_from_a_newer_version(migrated_url: str) -> None:
    database = Database(migrated_url)
    try:
        with database.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    finally:
        database.dispose()
    with pytest.raises(SchemaNotCurrent, match="upgrade lockgate") as info:
        check_up_to_date(migrated_url)
    assert info.value.current == "0099_future"


def test_upgrade_to_an_unknown_revision_fails_clearly(db_url: str) -> None:
    with pytest.raises(MigrationError, match="0099_future"):
        upgrade(db_url, "0099_future")
    assert current(db_url) is None


def test_a_failing_upgrade_leaves_nothing_behind(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole upgrade is one transaction: DDL included, on both databases."""
    import alembic.op

    real_create_index = alembic.op.create_index
    calls = 0

    def failing_create_index(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise RuntimeError("disk full")
        return real_create_index(*args, **kwargs)

    monkeypatch.setattr(alembic.op, "create_index", failing_create_index)
    with pytest.raises(RuntimeError, match="disk full"):
        upgrade(db_url)
    assert calls == 5
    assert current(db_url) is None
    database = Database(db_url)
    try:
        with database.begin() as connection:
            assert inspect(connection).get_table_names() == []
    finally:
        database.dispose()


def test_sqlite_migrations_can_rebuild_a_parent_table_without_losing_children(
    sqlite_url: str,
) -> None:
    """What op.batch_alter_table does on SQLite: copy, drop, rename. With foreign keys on,
    dropping ``space`` would delete every ``space_cylinder`` row."""
    upgrade(sqlite_url)
    database = Database(sqlite_url)
    try:
        with database.session() as s:
            facts.put(s, Space(id="s1", name="Relay room", cylinders=("1", "2")))
        with database.begin(schema_change=True) as connection:
            ddl = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'space'"
            ).scalar_one()
            for statement in (
                ddl.replace("CREATE TABLE space", "CREATE TABLE space_new", 1),
                "INSERT INTO space_new SELECT * FROM space",
                "DROP TABLE space",
                "ALTER TABLE space_new RENAME TO space",
            ):
                connection.exec_driver_sql(statement)
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        with database.session() as s:
            cylinders = s.execute(text("SELECT cylinder FROM space_cylinder")).scalars().all()
            assert sorted(cylinders) == ["1", "2"]
            # The pooled connection is back to enforcing foreign keys.
            assert s.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    finally:
        database.dispose()


def test_sqlite_migrations_refuse_to_commit_broken_references(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import alembic.op

    real_create_table = alembic.op.create_table

    def create_table_then_break_a_reference(name: str, *args: Any, **kwargs: Any) -> Any:
        table = real_create_table(name, *args, **kwargs)
        if name == "visitor_card_space":
            alembic.op.execute("INSERT INTO space_cylinder VALUES ('no-such-space', '1', 0)")
        return table

    monkeypatch.setattr(alembic.op, "create_table", create_table_then_break_a_reference)
    with pytest.raises(MigrationError, match=r"break a foreign key.*space_cylinder"):
        upgrade(sqlite_url)
    assert current(sqlite_url) is None


def test_an_upgrade_that_changes_nothing_does_not_check_every_reference(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[str] = []
    real_check = migrate._check_foreign_keys

    def counted(connection: Any, action: str, revision: str) -> None:
        checks.append(action)
        real_check(connection, action, revision)

    monkeypatch.setattr(migrate, "_check_foreign_keys", counted)
    upgrade(sqlite_url)
    assert checks == ["upgrade"]
    upgrade(sqlite_url)  # already at head: what a gateway's start does
    assert checks == ["upgrade"]

"""Many rows into one table in one statement, bound without SQLAlchemy's per-row machinery.

``connection.execute(insert(table), rows)`` makes, for every row, a dict of every bind
parameter, looks up each parameter's type processor and builds the DBAPI parameters from the
dict again. In a flood of requests, the batch's inserts (the audit entries and their
subjects, the inbox, the facts, the desired states) spent much of their time there.
:class:`BulkInsert` compiles the INSERT once per dialect, takes each column's bind processor
once (the same function SQLAlchemy would apply: JSON serialisation,
:class:`~gateway.store.tables.UtcTimestamp`, psycopg's JSON wrapper, ...) and binds every row
in one loop; the DBAPI's ``executemany`` runs it. The statement goes through
:meth:`Connection.exec_driver_sql`, so engine events (statement counts, the audit log's
savepoint hooks) see it as before.

On PostgreSQL through psycopg, :data:`COPY_FROM` rows or more are streamed with ``COPY ..
FROM STDIN`` instead: psycopg's executemany sends and reads back a statement per row (about
13 µs of the gateway's CPU each), COPY streams the rows (about 2.5 µs each). Below that size
the extra round trips cost more than they save.

- A plain INSERT is one COPY into the table.
- An upsert is a COPY into a temporary table of the same columns, then one ``INSERT ..
  SELECT .. ON CONFLICT`` from it, then the temporary table emptied (and at every commit).
  Each batch first asks for the table with ``CREATE .. IF NOT EXISTS``: the first batch on a
  database connection makes it, and a transaction that rolled its making back does no harm.
  The rows are first reduced to one per key, the last, whose values an executemany would have
  left stored (with ``DO NOTHING`` the table has only key columns: they are all the same).

Every statement of that is announced to the engine's ``before_cursor_execute`` and
``after_cursor_execute`` listeners like any other, and a database error is raised as
SQLAlchemy's own (``IntegrityError``, ...), as the INSERT's would be. (SQLAlchemy's ``echo``
log, which it writes itself, does not list them.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Insert, Table, column, exc, insert, select
from sqlalchemy import table as table_clause
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["COPY_FROM", "BulkInsert"]

COPY_FROM = 16
"""Rows from which an INSERT on PostgreSQL (psycopg) streams them with COPY."""


@dataclass(frozen=True, slots=True)
class _Copy:
    """How a batch is streamed: ``prepare`` (may be empty), then COPY with ``copy``, then
    ``apply`` (may be empty); each without parameters."""

    prepare: str
    copy: str
    apply: str


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    positional: bool
    names: tuple[str, ...]
    """The bind parameters' names, in the statement's parameter order."""
    keys: tuple[str, ...]
    """The row key of each parameter."""
    processed: tuple[tuple[int, Callable[[Any], Any]], ...]
    """(index, processor) of the parameters whose type converts the value."""
    copy: _Copy | None
    """The same rows through COPY (columns in ``keys`` order), where the dialect allows it."""


class BulkInsert:
    """An INSERT into ``table`` for many rows given as mappings of column name to value. As
    with SQLAlchemy's executemany, the first row's keys are the columns written and every row
    must have them (a missing one raises ``KeyError``).

    With ``upsert`` (the table's unique key columns) it is ``INSERT .. ON CONFLICT (upsert) DO
    UPDATE`` setting every other column of the table (``DO NOTHING`` when there is none): a
    row replaces the stored row with its key."""

    def __init__(self, table: Table, *, upsert: Sequence[str] | None = None) -> None:
        self.table = table
        self.upsert: tuple[str, ...] | None = None if upsert is None else tuple(upsert)
        if self.upsert is not None:
            unknown = [c for c in self.upsert if c not in table.c]
            if not self.upsert or unknown:
                raise ValueError(f"{table.name}: no key columns {', '.join(unknown)} to upsert")
        self._compiled: dict[tuple[int, tuple[str, ...]], tuple[Dialect, _Compiled]] = {}
        self._statements: dict[str, Insert] = {}

    def statement(self, dialect: str) -> Insert:
        """The statement, for ``dialect`` (``"postgresql"`` or ``"sqlite"``); made once."""
        made = self._statements.get(dialect)
        if made is None:
            if self.upsert is None:
                made = insert(self.table)
            else:
                stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(self.table)
                made = _on_conflict(stmt, self.table, self.upsert)
            self._statements[dialect] = made
        return made

    def _compile(self, dialect: Dialect, columns: tuple[str, ...]) -> _Compiled:
        known = self._compiled.get((id(dialect), columns))
        if known is not None and known[0] is dialect:
            return known[1]
        unknown = [c for c in columns if c not in self.table.c]
        if unknown:
            raise ValueError(f"{self.table.name} has no column {', '.join(unknown)}")
        if self.upsert is not None and not set(self.upsert) <= set(columns):
            raise ValueError(f"{self.table.name}: every row needs {', '.join(self.upsert)}")
        compiled = self.statement(dialect.name).compile(dialect=dialect, column_keys=list(columns))
        order = compiled.positiontup if dialect.positional else list(compiled.binds)
        if order is None:
            raise RuntimeError(f"the {dialect.name} dialect gave no parameter order")
        keys: list[str] = []
        processed: list[tuple[int, Callable[[Any], Any]]] = []
        for i, name in enumerate(order):
            param = compiled.binds[name]
            if param.key not in columns:
                raise RuntimeError(f"unexpected parameter {name!r} in {compiled.string}")
            keys.append(param.key)
            processor = param.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processed.append((i, processor))
        copy = None
        if dialect.name == "postgresql" and dialect.driver == "psycopg":
            copy = self._copy_plan(dialect, tuple(keys))
        made = _Compiled(
            compiled.string,
            dialect.positional,
            tuple(order),
            tuple(keys),
            tuple(processed),
            copy,
        )
        self._compiled[(id(dialect), columns)] = (dialect, made)
        return made

    def _copy_plan(self, dialect: Dialect, columns: tuple[str, ...]) -> _Copy:
        quote = dialect.identifier_preparer
        names = ", ".join(quote.format_column(self.table.c[k]) for k in columns)
        if self.upsert is None:
            return _Copy("", f"COPY {quote.format_table(self.table)} ({names}) FROM STDIN", "")
        digest = hashlib.sha1(",".join(columns).encode()).hexdigest()[:10]
        stage_name = f"lockgate_stage_{self.table.name}_{digest}"
        stage = table_clause(stage_name, *(column(k) for k in columns), schema="pg_temp")
        staged = f"pg_temp.{quote.quote(stage_name)}"
        upsert = _on_conflict(
            postgresql.insert(self.table).from_select(list(columns), select(*stage.c)),
            self.table,
            self.upsert,
        )
        return _Copy(
            prepare=(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {quote.quote(stage_name)} "
                f"ON COMMIT DELETE ROWS AS SELECT {names} FROM {quote.format_table(self.table)} "
                "WITH NO DATA"
            ),
            copy=f"COPY {staged} ({names}) FROM STDIN",
            apply=f"{upsert.compile(dialect=dialect)}; DELETE FROM {staged}",
        )

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write ``rows`` in one statement (an ``executemany``, or on PostgreSQL the COPY
        described in the module docstring); nothing when there are none."""
        if not rows:
            return
        plan = self._compile(conn.dialect, tuple(rows[0]))
        keys, processed, names = plan.keys, plan.processed, plan.names
        copying = plan.copy is not None and len(rows) >= COPY_FROM
        if copying and self.upsert is not None:
            rows = self._one_per_key(rows)
        params: list[Any] = []
        for row in rows:
            values = [row[k] for k in keys]
            for i, process in processed:
                values[i] = process(values[i])
            params.append(
                tuple(values)
                if plan.positional or copying
                else dict(zip(names, values, strict=True))
            )
        if copying and plan.copy is not None:
            _copy(conn, plan.copy, params)
        else:
            conn.exec_driver_sql(plan.sql, params)

    def _one_per_key(self, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        assert self.upsert is not None
        return list({tuple(row[k] for k in self.upsert): row for row in rows}.values())


def _on_conflict(
    stmt: postgresql.Insert | sqlite.Insert, table: Table, keys: tuple[str, ...]
) -> Insert:
    others = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    if not others:
        return stmt.on_conflict_do_nothing(index_elements=list(keys))
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=others)


def _copy(conn: Connection, plan: _Copy, rows: list[Any]) -> None:
    """``rows`` (tuples in the COPY's column order) through psycopg's COPY, on the
    connection's own transaction."""
    dbapi = conn.connection.driver_connection
    if dbapi is None:
        raise RuntimeError("the connection has no database connection")
    dispatch = conn.dispatch
    error = conn.dialect.loaded_dbapi.Error
    with dbapi.cursor() as cursor:
        statement = ""

        def run(sql: str) -> None:
            nonlocal statement
            statement = sql
            dispatch.before_cursor_execute(conn, cursor, sql, (), None, False)
            cursor.execute(sql)
            dispatch.after_cursor_execute(conn, cursor, sql, (), None, False)

        try:
            if plan.prepare:
                run(plan.prepare)
            statement = plan.copy
            dispatch.before_cursor_execute(conn, cursor, statement, rows, None, True)
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
            dispatch.after_cursor_execute(conn, cursor, statement, rows, None, True)
            if plan.apply:
                run(plan.apply)
        except error as err:
            raise exc.DBAPIError.instance(
                statement, None, err, error, dialect=conn.dialect
            ) from err

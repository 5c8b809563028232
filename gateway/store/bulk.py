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

On PostgreSQL through psycopg, a plain INSERT of :data:`COPY_FROM` rows or more is sent as one
``COPY .. FROM STDIN`` instead: psycopg's executemany sends and reads back a statement per row
(about 13 µs of the gateway's CPU each), COPY streams the rows (about 2.5 µs each). Below that
size the extra round trip of COPY costs more than it saves. The COPY is announced to the
engine's ``before_cursor_execute`` and ``after_cursor_execute`` listeners like any statement,
and a database error is raised as SQLAlchemy's own (``IntegrityError``, ...), as the INSERT's
would be.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Insert, Table, exc, insert

__all__ = ["COPY_FROM", "BulkInsert"]

COPY_FROM = 16
"""Rows from which a plain INSERT on PostgreSQL (psycopg) is sent as a COPY."""


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
    copy: str | None
    """The same rows as a ``COPY .. FROM STDIN`` (columns in ``keys`` order), where the
    dialect and the statement allow it."""


class BulkInsert:
    """An INSERT into ``table`` (by default a plain ``insert(table)``; ``statement(dialect
    name)`` gives another, such as an ``ON CONFLICT`` upsert) for many rows given as mappings
    of column name to value. As with SQLAlchemy's executemany, the first row's keys are the
    columns written and every row must have them (a missing one raises ``KeyError``)."""

    def __init__(self, table: Table, statement: Callable[[str], Insert] | None = None) -> None:
        self.table = table
        self._statement = statement
        self._compiled: dict[tuple[int, tuple[str, ...]], tuple[Dialect, _Compiled]] = {}

    def _compile(self, dialect: Dialect, columns: tuple[str, ...]) -> _Compiled:
        known = self._compiled.get((id(dialect), columns))
        if known is not None and known[0] is dialect:
            return known[1]
        unknown = [c for c in columns if c not in self.table.c]
        if unknown:
            raise ValueError(f"{self.table.name} has no column {', '.join(unknown)}")
        stmt = insert(self.table) if self._statement is None else self._statement(dialect.name)
        compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
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
        if self._statement is None and dialect.name == "postgresql" and dialect.driver == "psycopg":
            quote = dialect.identifier_preparer
            copy = (
                f"COPY {quote.format_table(self.table)} "
                f"({', '.join(quote.format_column(self.table.c[k]) for k in keys)}) FROM STDIN"
            )
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

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows`` in one statement (an ``executemany`` or a COPY); nothing when there
        are none."""
        if not rows:
            return
        plan = self._compile(conn.dialect, tuple(rows[0]))
        keys, processed, names = plan.keys, plan.processed, plan.names
        copying = plan.copy is not None and len(rows) >= COPY_FROM
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


def _copy(conn: Connection, statement: str, rows: list[Any]) -> None:
    """``rows`` (tuples in the statement's column order) through psycopg's COPY, on the
    connection's own transaction."""
    dbapi = conn.connection.driver_connection
    if dbapi is None:
        raise RuntimeError("the connection has no database connection")
    with dbapi.cursor() as cursor:
        conn.dispatch.before_cursor_execute(conn, cursor, statement, rows, None, True)
        try:
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        except conn.dialect.loaded_dbapi.Error as err:
            raise exc.DBAPIError.instance(
                statement, None, err, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
            ) from err
        conn.dispatch.after_cursor_execute(conn, cursor, statement, rows, None, True)

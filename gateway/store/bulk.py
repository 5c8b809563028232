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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Insert, Table, insert

__all__ = ["BulkInsert"]


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
        made = _Compiled(
            compiled.string, dialect.positional, tuple(order), tuple(keys), tuple(processed)
        )
        self._compiled[(id(dialect), columns)] = (dialect, made)
        return made

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows`` in one ``executemany``; nothing when there are none."""
        if not rows:
            return
        plan = self._compile(conn.dialect, tuple(rows[0]))
        keys, processed, names = plan.keys, plan.processed, plan.names
        params: list[Any] = []
        for row in rows:
            values = [row[k] for k in keys]
            for i, process in processed:
                values[i] = process(values[i])
            params.append(
                tuple(values) if plan.positional else dict(zip(names, values, strict=True))
            )
        conn.exec_driver_sql(plan.sql, params)

"""Values a writer remembers from one write transaction to the next (SQLite).

A request arriving alone is a transaction of its own, and each such transaction used to read
the same things again: the fact journal's head, the audit chain's head, the operator. Within
one process they only change when this process writes them, unless another connection (another
process, or another connection of this one) commits in between. SQLite tells exactly that:
``PRAGMA data_version`` on a connection changes when any *other* connection has committed to
the database since the connection last looked, and not for the connection's own commits.

So the values are kept per database connection, with the ``data_version`` read in the
transaction that left them, and a later write transaction on the same connection uses them
only when:

- the connection's ``data_version``, read under the write lock (``BEGIN IMMEDIATE``: no other
  writer can commit until this transaction ends), is unchanged: nobody else committed since;
- no other transaction committed on the connection since (any write transaction's commit
  drops what the connection kept; the transaction that used the values puts them back after
  its own commit succeeded);
- the transaction that left them committed: a rollback, of the transaction or of a savepoint
  in it, drops them.

Otherwise the values are read again, as without this module; the heads
(:func:`read_together`) in one statement. The modules that keep a
value here update it in step with their own writes (:mod:`gateway.store.journal`,
:mod:`gateway.audit.log`) or forget everything when they write what others keep
(:func:`forget`, the operators); every write of those tables goes through those modules.
On PostgreSQL (several writer processes and no cheap way to see that another one committed)
nothing is kept between transactions: each write transaction reads the heads, in one statement.
Read-only transactions get an empty dict. Either way the values then live as long as the
transaction, as :mod:`gateway.store.txcache` values do.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sqlalchemy import Connection, ScalarSelect, select
from sqlalchemy.orm import Session, SessionTransaction

__all__ = [
    "REMEMBER_OPTION",
    "after_commit",
    "drop",
    "ended",
    "forget",
    "read_together",
    "remembered",
    "rolled_back",
]

REMEMBER_OPTION: Final = "lockgate_remember"
"""Execution option of an engine's write connections (not of its read-only ones):
``"remember"`` (SQLite: values kept between transactions, the heads read together when they
are not) or ``"read-together"`` (PostgreSQL: the heads read together in each transaction)."""

Mode = Literal["remember", "read-together"]


@dataclass(frozen=True, slots=True)
class _Head:
    key: Hashable
    columns: tuple[ScalarSelect[Any], ...]
    value: Callable[[Sequence[Any]], Any]


_HEADS: list[_Head] = []


def read_together(
    key: Hashable, columns: Sequence[ScalarSelect[Any]], value: Callable[[Sequence[Any]], Any]
) -> None:
    """Register a value that a write transaction reads, when it does not remember it, in one
    statement with the other registered ones: ``columns`` (scalar subqueries) are selected and
    ``value(their values)`` is put under ``key``. For the heads that nearly every write
    transaction needs (the journal's, the audit chain's)."""
    _HEADS.append(_Head(key, tuple(columns), value))


_KEPT: Final = "lockgate.remembered"
_TX: Final = "lockgate.remembered.tx"


@dataclass(slots=True)
class _Kept:
    """What a connection keeps after a commit: the values and the ``data_version`` they hold
    for."""

    version: int
    values: dict[Any, Any]


@dataclass(slots=True)
class _Transaction:
    """The values of the session's current transaction; ``keep`` is the connection's info
    to put them into after the commit (``None``: not kept)."""

    keep: dict[Any, Any] | None
    version: int = 0
    values: dict[Any, Any] = field(default_factory=dict)


def remembered(session: Session) -> dict[Any, Any]:
    """The dict of values remembered for the session's current transaction.

    In an SQLite write transaction it starts with what the previous transaction on the same
    connection left, when nothing can have changed them since (see the module docstring; the
    check costs one ``PRAGMA data_version`` per transaction); otherwise empty. The caller
    reads a value, reads the store when it is missing, and sets the value it read or wrote.
    """
    tx: _Transaction | None = session.info.get(_TX)
    if tx is not None:
        return tx.values
    conn = session.connection()
    mode: Mode | None = conn.get_execution_options().get(REMEMBER_OPTION)
    if mode == "remember":
        version = int(conn.exec_driver_sql("PRAGMA data_version").scalar_one())
        kept: _Kept | None = conn.info.get(_KEPT)
        values = dict(kept.values) if kept is not None and kept.version == version else {}
        tx = _Transaction(conn.info, version, values)
    else:
        tx = _Transaction(None)
    if mode is not None:
        _read_together(conn, tx.values)
    session.info[_TX] = tx
    return tx.values


def _read_together(conn: Connection, values: dict[Any, Any]) -> None:
    missing = [h for h in _HEADS if h.key not in values]
    if not missing:
        return
    row = conn.execute(select(*(c for h in missing for c in h.columns))).one()
    start = 0
    for h in missing:
        values[h.key] = h.value(row[start : start + len(h.columns)])
        start += len(h.columns)


def forget(session: Session) -> None:
    """Forget every remembered value, in this transaction and after it (a caller wrote
    something another module keeps here)."""
    tx: _Transaction | None = session.info.get(_TX)
    if tx is None:
        session.info[_TX] = _Transaction(None)
    else:
        tx.values.clear()
        tx.keep = None


def drop(conn: Connection, *_: Any) -> None:
    """Engine listener (``commit`` of a write transaction, ``rollback``): the connection
    keeps nothing from before."""
    conn.info.pop(_KEPT, None)


def after_commit(session: Session) -> None:
    """Session listener (``after_commit``): the connection keeps this transaction's values."""
    tx: _Transaction | None = session.info.pop(_TX, None)
    if tx is not None and tx.keep is not None:
        tx.keep[_KEPT] = _Kept(tx.version, tx.values)


def ended(session: Session, transaction: SessionTransaction) -> None:
    """Session listener (``after_transaction_end``): the end of the outermost transaction
    ends its values (kept by :func:`after_commit` when it committed)."""
    if transaction.parent is None:
        session.info.pop(_TX, None)


def rolled_back(session: Session, *_: Any) -> None:
    """Session listener (``after_soft_rollback``): a rollback, of a savepoint too, forgets
    (what was written is gone, and may have been remembered)."""
    forget(session)

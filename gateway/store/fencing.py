"""Fencing: the write transactions of a core leader carry its fencing token, and the database
refuses them once another instance has taken the lease.

The ``leader_lease`` table (:mod:`gateway.store.tables`) holds one row per lease with a token
that grows by one at every change of leader (:mod:`gateway.leadership.lease`). A
:class:`Database` given a :class:`Fence` (:meth:`Database.set_fence`) starts every write
transaction on PostgreSQL with ``SELECT lockgate_fenced_write_lock(key, name, token)``
instead of the plain advisory lock: one round trip that takes the store's write lock and then
(in a new statement, so it sees every commit made before the lock was granted) compares the
lease's token with the fence's. A different token aborts the transaction with SQLSTATE
:data:`FENCED_SQLSTATE` (class 57, *operator intervention*: the driver raises it as an
``OperationalError``, which the callers treat as transient and retry rather than answer), and
the fence's ``on_fenced`` is called so that the instance steps down.

Because the lease changes hands only under the same write lock, every write transaction
commits entirely under one leader: one that began before a takeover finishes first, one that
begins after it sees the new token.

SQLite is single-process (one core, always the leader): no fence is set there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

__all__ = ["FENCED_SQLSTATE", "LEASE_NAME", "Fence", "is_fenced_out", "take_fenced_write_lock"]

LEASE_NAME: Final = "core"
"""The lease the core instances of one database compete for."""

FENCED_SQLSTATE: Final = "57L01"
"""SQLSTATE of a write refused because the writer's fencing token is no longer the lease's."""


@dataclass(frozen=True)
class Fence:
    """The fencing token a leader writes under.

    ``on_fenced`` is called (on the thread that tried to write) when the database refused a
    transaction because the lease has another token now; it must be quick and thread-safe.
    """

    token: int
    name: str = LEASE_NAME
    on_fenced: Callable[[], None] = field(default=lambda: None, compare=False)


def is_fenced_out(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) is the database refusing a fenced-out write."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    return getattr(orig, "sqlstate", None) == FENCED_SQLSTATE


def take_fenced_write_lock(conn: Connection, lock_key: int, fence: Fence) -> None:
    """Take the store's write lock and check ``fence``'s token (PostgreSQL, first statement of
    a write transaction). Raises the driver's ``OperationalError`` when fenced out."""
    try:
        conn.exec_driver_sql(
            "SELECT lockgate_fenced_write_lock(%(key)s, %(name)s, %(token)s)",
            {"key": lock_key, "name": fence.name, "token": fence.token},
        )
    except DBAPIError as exc:
        if is_fenced_out(exc):
            log.error("write refused: %s", str(exc.orig).strip())
            fence.on_fenced()
        raise

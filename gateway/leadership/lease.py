"""The leader lease in PostgreSQL: one row of ``leader_lease`` per lease name.

Times are the database's (``clock_timestamp()``), so the instances' clocks need not agree.

- **acquire** takes the store's write lock (the advisory lock every write transaction takes,
  waiting at most ``lock_timeout_s``), then, if the lease is free (never held, expired, or
  held by the same instance), writes a new holder (with its host and the base URL of its web
  console, so that a standby's console can send people there) with the token increased by
  one. Taking the write lock orders the change of token after every write transaction
  already under way: a fenced transaction either committed before the takeover or sees the
  new token (:mod:`gateway.store.fencing`).
- **renew** moves the expiry ``lease_s`` ahead, only while the row still has the caller's
  token (it takes no write lock, so a leader busy with a long transaction still renews).
- **release** ends the lease now (a graceful stop), so a standby takes over at its next try.

Every statement runs with ``statement_timeout`` and ``lock_timeout`` so that a call never
hangs longer than the lease lasts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text

from gateway.store.database import WRITE_LOCK_KEY, normalize_url, replace_connections_lost_at_ping
from gateway.store.fencing import LEASE_NAME

__all__ = ["LeaseStore", "LeaseView"]


@dataclass(frozen=True)
class LeaseView:
    """The lease row as read (or written) at ``now`` (database time)."""

    name: str
    token: int
    holder: str
    host: str
    acquired_at: datetime
    expires_at: datetime
    now: datetime
    console_url: str | None = None
    """The base URL of the holder's web console (None: no console, or no known address)."""

    @property
    def expired(self) -> bool:
        return self.expires_at <= self.now


_COLUMNS = (
    "name, token, holder, host, console_url, acquired_at, expires_at, clock_timestamp() AS now"
)

_ACQUIRE = text(
    f"""
    INSERT INTO leader_lease (name, token, holder, host, console_url, acquired_at, expires_at)
    VALUES (:name, 1, :holder, :host, :console_url, clock_timestamp(),
            clock_timestamp() + make_interval(secs => :lease_s))
    ON CONFLICT (name) DO UPDATE SET
        token = leader_lease.token + 1,
        holder = excluded.holder,
        host = excluded.host,
        console_url = excluded.console_url,
        acquired_at = excluded.acquired_at,
        expires_at = excluded.expires_at
    WHERE leader_lease.expires_at <= clock_timestamp() OR leader_lease.holder = excluded.holder
    RETURNING {_COLUMNS}
    """
)

_RENEW = text(
    f"""
    UPDATE leader_lease SET expires_at = clock_timestamp() + make_interval(secs => :lease_s)
    WHERE name = :name AND token = :token
    RETURNING {_COLUMNS}
    """
)

_RELEASE = text(
    "UPDATE leader_lease SET expires_at = clock_timestamp() WHERE name = :name AND token = :token"
)

_READ = text(f"SELECT {_COLUMNS} FROM leader_lease WHERE name = :name")


class LeaseStore:
    """The lease operations on their own small connection pool (never the gateway's, whose
    connections may all be busy). PostgreSQL only. Thread-safe; :meth:`dispose` when done."""

    def __init__(self, url: str, *, lease_s: float, lock_timeout_s: float, name: str = LEASE_NAME):
        parsed = normalize_url(url)
        if parsed.get_backend_name() != "postgresql":
            raise ValueError("database url: a leader lease needs PostgreSQL")
        if lease_s <= 0 or lock_timeout_s <= 0:
            raise ValueError("lease_s, lock_timeout_s: must be positive")
        self.name = name
        self.lease_s = lease_s
        self.lock_timeout_s = lock_timeout_s
        self.engine: Engine = create_engine(
            parsed,
            pool_size=1,
            max_overflow=1,
            pool_pre_ping=True,
            connect_args={"connect_timeout": max(2, int(lease_s))},
        )
        replace_connections_lost_at_ping(self.engine)

    def _limits(self, conn: Connection) -> None:
        statement_ms = max(1, int(self.lease_s * 1000))
        lock_ms = max(1, int(self.lock_timeout_s * 1000))
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {statement_ms}")
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {lock_ms}")

    @staticmethod
    def _view(row: Any) -> LeaseView:
        return LeaseView(
            name=row.name,
            token=int(row.token),
            holder=row.holder,
            host=row.host,
            acquired_at=row.acquired_at,
            expires_at=row.expires_at,
            now=row.now,
            console_url=row.console_url,
        )

    def read(self) -> LeaseView | None:
        """The lease as it stands, or None if it was never held."""
        with self.engine.begin() as conn:
            self._limits(conn)
            row = conn.execute(_READ, {"name": self.name}).first()
        return self._view(row) if row is not None else None

    def acquire(self, holder: str, host: str, console_url: str | None = None) -> LeaseView | None:
        """Take the lease for ``holder`` (on ``host``, its console at ``console_url``) if it is
        free; the new lease (with its new token), or None when another instance holds it.
        Raises the driver's ``OperationalError`` when the write lock is not granted within
        ``lock_timeout_s`` (try again later)."""
        with self.engine.begin() as conn:
            self._limits(conn)
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
            row = conn.execute(
                _ACQUIRE,
                {
                    "name": self.name,
                    "holder": holder,
                    "host": host[:200],
                    "console_url": console_url,
                    "lease_s": self.lease_s,
                },
            ).first()
        return self._view(row) if row is not None else None

    def renew(self, token: int) -> LeaseView | None:
        """Extend the lease held with ``token``; None when it has another token now."""
        with self.engine.begin() as conn:
            self._limits(conn)
            row = conn.execute(
                _RENEW, {"name": self.name, "token": token, "lease_s": self.lease_s}
            ).first()
        return self._view(row) if row is not None else None

    def release(self, token: int) -> bool:
        """End the lease held with ``token`` now; False when it has another token."""
        with self.engine.begin() as conn:
            self._limits(conn)
            result = conn.execute(_RELEASE, {"name": self.name, "token": token})
        return bool(result.rowcount)

    def dispose(self) -> None:
        self.engine.dispose()

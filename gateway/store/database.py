"""Engine and sessions for one database URL (SQLite file or PostgreSQL).

Every session is one transaction. Write sessions are serialised across processes on both
databases, so a read-modify-write (check a revision, then store the next one) never interleaves
with another writer and outbox ids are allocated in commit order:

- SQLite: the driver's own transaction handling is switched off and every transaction is
  started explicitly at its first statement, with ``BEGIN IMMEDIATE`` (takes the write lock at
  once) for write sessions and a plain ``BEGIN`` under ``PRAGMA query_only`` for read-only ones.
  Each connection runs with ``journal_mode=WAL`` (readers never block the writer),
  ``synchronous=FULL`` (a committed transaction survives a power cut), ``foreign_keys=ON``
  (off only in the transaction of a migration, see :meth:`Database.begin`) and
  ``busy_timeout=10000`` ms. ``query_only`` and ``foreign_keys`` are set before a ``BEGIN``
  only when the transaction needs another mode than the connection's last one. A write
  connection remembers values between its transactions (:mod:`gateway.store.remembered`).
- PostgreSQL: write transactions take a transaction-scoped advisory lock as their first
  statement (under the default READ COMMITTED isolation each later statement then sees every
  earlier writer's commit); read-only transactions run ``REPEATABLE READ, READ ONLY`` (one
  snapshot, never a serialisation failure) and take no lock. A database given a fence
  (:meth:`Database.set_fence`, the core leader's) takes the lock and checks its fencing token
  in the same statement (:mod:`gateway.store.fencing`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, Literal

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from gateway.store import remembered
from gateway.store.fencing import Fence, take_fenced_write_lock

__all__ = [
    "Database",
    "DatabaseUrlError",
    "default_sqlite_url",
    "normalize_url",
    "replace_connections_lost_at_ping",
]

Dialect = Literal["sqlite", "postgresql"]

WRITE_LOCK_KEY: Final = 0x6C6F636B67617465  # "lockgate" in ASCII, the advisory lock id
"""PostgreSQL advisory lock taken by every write transaction."""

SQLITE_BUSY_TIMEOUT_MS: Final = 10_000

_READONLY_OPTION: Final = "lockgate_readonly"
_SCHEMA_CHANGE_OPTION: Final = "lockgate_schema_change"
_FENCE_OPTION: Final = "lockgate_fence"


class DatabaseUrlError(ValueError):
    """A database URL that lockgate cannot use; the message says why and what to write."""


def default_sqlite_url(path: str | Path) -> str:
    """The SQLite URL of a database file (made absolute, so the URL does not depend on the
    working directory)."""
    absolute = Path(path).expanduser().resolve()
    return URL.create("sqlite+pysqlite", database=str(absolute)).render_as_string()


def normalize_url(url: str) -> URL:
    """Parse and check a database URL, mapping it to the driver lockgate uses.

    Accepted: ``sqlite:///path`` (a file; ``sqlite+pysqlite`` too) and
    ``postgresql://...``, ``postgres://...`` or ``postgresql+psycopg://...`` (psycopg 3).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUrlError(f"database url: cannot be parsed ({exc})") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise DatabaseUrlError(
                f"database url: SQLite driver {driver!r} is not supported; write sqlite:///PATH"
            )
        if (
            not parsed.database
            or parsed.database == ":memory:"
            or parsed.database.startswith("file:")
        ):
            raise DatabaseUrlError(
                "database url: an SQLite database must be a file path (sqlite:///PATH), "
                "in-memory databases are not supported"
            )
        return parsed.set(drivername="sqlite+pysqlite")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise DatabaseUrlError(
                f"database url: PostgreSQL driver {driver!r} is not supported; write "
                "postgresql://... or postgresql+psycopg://... (psycopg 3)"
            )
        if not parsed.database:
            raise DatabaseUrlError("database url: the PostgreSQL database name is missing")
        return parsed.set(drivername="postgresql+psycopg")
    raise DatabaseUrlError(
        f"database url: {backend!r} is not supported; use sqlite:///PATH or postgresql://..."
    )


class Database:
    """Engine + session factory for one database URL.

    ``url`` is the normalised URL (``sqlite+pysqlite://`` or ``postgresql+psycopg://``),
    ``dialect`` is ``"sqlite"`` or ``"postgresql"``. The database is not contacted until the
    first session. Thread-safe: use one :class:`Database` per process and one session per
    unit of work; call :meth:`dispose` when done.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        parsed = normalize_url(url)
        self.url: str = parsed.render_as_string(hide_password=False)
        self.dialect: Dialect = "sqlite" if parsed.get_backend_name() == "sqlite" else "postgresql"
        if self.dialect == "sqlite":
            folder = Path(str(parsed.database)).parent
            if not folder.is_dir():
                raise DatabaseUrlError(f"database url: the folder {folder} does not exist")
            self.engine: Engine = create_engine(
                parsed, echo=echo, execution_options={remembered.REMEMBER_OPTION: "remember"}
            )
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
            event.listen(self.engine, "commit", _sqlite_on_commit)
            event.listen(self.engine, "rollback", remembered.drop)
        else:
            self.engine = create_engine(
                parsed,
                echo=echo,
                pool_pre_ping=True,
                execution_options={remembered.REMEMBER_OPTION: "read-together"},
            )
            event.listen(self.engine, "begin", _postgresql_on_begin)
            replace_connections_lost_at_ping(self.engine)
        readonly_engine = self.engine.execution_options(
            **{_READONLY_OPTION: True, remembered.REMEMBER_OPTION: None}
        )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readonly_sessions = sessionmaker(readonly_engine, expire_on_commit=False)
        for factory in (self._sessions, self._readonly_sessions):
            event.listen(factory, "after_commit", remembered.after_commit)
            event.listen(factory, "after_transaction_end", remembered.ended)
            event.listen(factory, "after_soft_rollback", remembered.rolled_back)

    def __repr__(self) -> str:
        shown = make_url(self.url).render_as_string(hide_password=True)
        return f"Database({shown!r})"

    def session(self, *, readonly: bool = False) -> contextlib.AbstractContextManager[Session]:
        """A Session in one transaction: commits on normal exit, rolls back on exception.

        Write sessions (the default) are serialised with every other write session on the
        same database, in this and every other process; they wait for the lock (SQLite:
        at most 10 s, then ``OperationalError: database is locked``). ``readonly=True`` gives
        a session that sees a consistent snapshot, never waits for writers and refuses to
        write.
        """
        return self._transaction(readonly)

    @contextlib.contextmanager
    def _transaction(self, readonly: bool) -> Iterator[Session]:
        factory = self._readonly_sessions if readonly else self._sessions
        with factory() as session, session.begin():
            yield session

    def begin(
        self, *, schema_change: bool = False
    ) -> contextlib.AbstractContextManager[Connection]:
        """A Core connection in one write transaction: commits on normal exit, rolls back on
        exception.

        ``schema_change=True`` (migrations) switches SQLite's foreign key enforcement off for
        the transaction, as SQLite requires when a table is rebuilt (dropping a parent table
        would otherwise delete its children); run ``PRAGMA foreign_key_check`` before commit.
        """
        engine = self.engine
        if schema_change:
            engine = engine.execution_options(**{_SCHEMA_CHANGE_OPTION: True})
        return engine.begin()

    def set_fence(self, fence: Fence | None) -> None:
        """Check ``fence`` in every later write transaction (PostgreSQL; ``None``: stop
        checking). A transaction refused by it raises the driver's ``OperationalError``."""
        if self.dialect != "postgresql":
            raise ValueError("fence: only a PostgreSQL store is fenced (SQLite has one writer)")
        self.engine.update_execution_options(**{_FENCE_OPTION: fence})

    def dispose(self) -> None:
        """Close every pooled connection. The object stays usable (it reconnects)."""
        self.engine.dispose()


def _is_readonly(conn: Connection) -> bool:
    return bool(conn.get_execution_options().get(_READONLY_OPTION, False))


def _is_schema_change(conn: Connection) -> bool:
    return bool(conn.get_execution_options().get(_SCHEMA_CHANGE_OPTION, False))


_PRAGMAS: Final = "lockgate.pragmas"
"""Connection info key: the ``(query_only, foreign_keys)`` the connection is set to."""


def _sqlite_on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    # Switch off the sqlite3 module's own BEGIN handling; _sqlite_on_begin emits BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        mode = cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RuntimeError(
                f"SQLite refused write-ahead logging (journal_mode is {mode!r}); "
                "put the database on a local file system"
            )
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()
    record.info[_PRAGMAS] = ("OFF", "ON")


def _sqlite_on_begin(conn: Connection) -> None:
    # Both pragmas are connection settings (no-ops inside a transaction), so they are set
    # before a BEGIN whenever the transaction needs another mode than the connection's last
    # one: a pooled connection never carries one transaction's mode into the next. Every
    # setting of them goes through here (and the connect event), so the mode remembered in
    # the connection's info is the connection's.
    readonly = _is_readonly(conn)
    wanted = ("ON" if readonly else "OFF", "OFF" if _is_schema_change(conn) else "ON")
    query_only, foreign_keys = conn.info.get(_PRAGMAS, (None, None))
    if query_only != wanted[0] or foreign_keys != wanted[1]:
        conn.info.pop(_PRAGMAS, None)  # unknown until both are set
        conn.exec_driver_sql(f"PRAGMA query_only={wanted[0]}")
        conn.exec_driver_sql(f"PRAGMA foreign_keys={wanted[1]}")
        conn.info[_PRAGMAS] = wanted
    conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _sqlite_on_commit(conn: Connection) -> None:
    if not _is_readonly(conn):
        remembered.drop(conn)


def replace_connections_lost_at_ping(engine: Engine) -> None:
    """Make ``engine``'s pool (PostgreSQL, ``pool_pre_ping``) replace a connection found lost
    by its ping, also when psycopg hides the loss (:func:`_postgresql_ping_lost`)."""
    event.listen(engine, "handle_error", _postgresql_ping_lost)


def _postgresql_ping_lost(context: ExceptionContext) -> None:
    """A pooled connection the server dropped is a lost connection, also when psycopg hides it.

    When the socket breaks while the pool's ping waits for its answer, psycopg raises
    ``OperationalError`` but leaves the connection open with the ping still active; the ping
    then fails to restore ``autocommit`` and raises ``ProgrammingError`` in its place, which
    SQLAlchemy does not take for a disconnect. Marked as one, the pool replaces the
    connection instead of failing the transaction that asked for it."""
    if context.is_pre_ping and not context.is_disconnect:
        lost = context.dialect.loaded_dbapi.OperationalError
        if isinstance(context.original_exception.__context__, lost):
            context.is_disconnect = True


def _postgresql_on_begin(conn: Connection) -> None:
    # psycopg opens the transaction implicitly with the first statement below.
    if _is_readonly(conn):
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    elif (fence := conn.get_execution_options().get(_FENCE_OPTION)) is not None:
        take_fenced_write_lock(conn, WRITE_LOCK_KEY, fence)
    else:
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")

"""Schema migrations (Alembic), driven from code: no ``alembic.ini`` is needed at run time.

``lockgate db upgrade`` calls :func:`upgrade`; the service calls :func:`check_up_to_date` at
start-up and refuses to run on a schema it does not know. Each upgrade or downgrade runs in one
transaction (SQLite and PostgreSQL both have transactional DDL), under the store's write lock,
so two processes upgrading at once do it one after the other. On SQLite foreign keys are off
during the migration (so that ``op.batch_alter_table`` can rebuild a parent table without
deleting its children) and checked with ``PRAGMA foreign_key_check`` before the commit.

To write a new revision: copy the style of ``migrations/versions/0001_initial.py`` (or run
``alembic.command.revision(make_config(), message=..., rev_id="0002_...")``), write the
operations by hand and keep ``tables.py`` in step; the schema test compares both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from gateway.store.database import Database

__all__ = [
    "MIGRATIONS_DIR",
    "MigrationError",
    "SchemaNotCurrent",
    "check_up_to_date",
    "current",
    "downgrade",
    "head",
    "make_config",
    "upgrade",
]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
"""The Alembic environment (``env.py``, ``versions/``), shipped inside the package."""


class MigrationError(RuntimeError):
    """A migration could not run (unknown revision, ...); the message says why."""


class SchemaNotCurrent(MigrationError):
    """The database schema is not the one this lockgate version needs.

    ``current`` is the revision found in the database (None: no schema yet), ``head`` the
    revision this version of lockgate needs.
    """

    def __init__(self, message: str, *, current: str | None, head: str) -> None:
        super().__init__(message)
        self.current = current
        self.head = head


def make_config() -> Config:
    """An Alembic :class:`~alembic.config.Config` for the packaged migrations."""
    config = Config()
    # ConfigParser interpolation: a literal "%" must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(make_config())


def head() -> str:
    """The newest revision shipped with this version of lockgate."""
    found = _scripts().get_current_head()
    if found is None:  # pragma: no cover - the package always ships revisions
        raise MigrationError(f"no migrations found in {MIGRATIONS_DIR}")
    return found


def _run(url: str, action: Literal["upgrade", "downgrade"], revision: str) -> None:
    database = Database(url)
    try:
        with database.begin(schema_change=True) as connection:
            config = make_config()
            config.attributes["connection"] = connection
            before = MigrationContext.configure(connection).get_current_revision()
            try:
                if action == "upgrade":
                    command.upgrade(config, revision)
                else:
                    command.downgrade(config, revision)
            except CommandError as exc:
                raise MigrationError(f"{action} to {revision!r}: {exc}") from exc
            # Checked only when a migration ran: the check reads every referencing row
            # (a fifth of a second at 100k credentials, at every start of the gateway).
            after = MigrationContext.configure(connection).get_current_revision()
            if database.dialect == "sqlite" and after != before:
                _check_foreign_keys(connection, action, revision)
    finally:
        database.dispose()


def _check_foreign_keys(connection: Connection, action: str, revision: str) -> None:
    """SQLite runs migrations with foreign keys off; refuse to commit a broken reference."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        table, rowid, parent, _ = broken[0]
        raise MigrationError(
            f"{action} to {revision!r}: {len(broken)} row(s) break a foreign key, the first "
            f"in table {table} (rowid {rowid}) pointing to {parent}; nothing was changed"
        )


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema of the database at ``url`` up to ``revision`` (default: the newest).

    Harmless when the schema is already there.
    """
    _run(url, "upgrade", revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Take the schema back to ``revision`` (``"base"``: drop every table lockgate created,
    with its data)."""
    _run(url, "downgrade", revision)


def current(url: str) -> str | None:
    """The revision of the database's schema, or None if it has none yet."""
    database = Database(url)
    try:
        with database.session(readonly=True) as session:
            return MigrationContext.configure(session.connection()).get_current_revision()
    finally:
        database.dispose()


def check_up_to_date(url: str) -> None:
    """Raise :class:`SchemaNotCurrent` unless the database schema is at :func:`head`."""
    found = current(url)
    needed = head()
    if found == needed:
        return
    shown = make_url(url).render_as_string(hide_password=True)
    if found is None:
        message = (
            f"the database {shown} has no lockgate schema yet; run `lockgate db upgrade` "
            "to create it"
        )
    elif _known(found):
        message = (
            f"the database {shown} has schema revision {found}, this lockgate needs "
            f"{needed}; run `lockgate db upgrade`"
        )
    else:
        message = (
            f"the database {shown} has schema revision {found}, which this lockgate does not "
            f"know (it needs {needed}): the database was upgraded by a newer lockgate, so "
            "upgrade lockgate"
        )
    raise SchemaNotCurrent(message, current=found, head=needed)


def _known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False

"""``lockgate db``: the database schema."""

from __future__ import annotations

import typer
from sqlalchemy.engine import make_url

from gateway.cli.common import console, database, fail
from gateway.cli.errors import BAD_INPUT

db_app = typer.Typer(help="Database schema (migrations).", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or migrate the schema to REVISION (default: the newest)."""
    from gateway.store import migrate

    _check_revision(revision)
    db = database()
    try:
        before = migrate.current(db.url)
        migrate.upgrade(db.url, revision)
        after = migrate.current(db.url)
    except Exception as exc:
        fail(f"migration failed: {exc}")
    finally:
        db.dispose()
    where = make_url(db.url).render_as_string(hide_password=True)
    if before == after:
        console.print(f"database {where} is at revision {after}: nothing to do")
    else:
        console.print(f"database {where} upgraded from {before or 'empty'} to {after}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the database."""
    from gateway.store import migrate

    db = database()
    try:
        console.print(migrate.current(db.url) or "empty (run lockgate db upgrade)")
    finally:
        db.dispose()


def _check_revision(revision: str) -> None:
    """Fail naming REVISION (exit code 2) unless the migrations know it."""
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    from gateway.store import migrate

    scripts = ScriptDirectory.from_config(migrate.make_config())
    try:
        known = scripts.get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        revisions = ", ".join(r.revision for r in scripts.walk_revisions())
        fail(f"REVISION: unknown revision {revision!r} (known: head, {revisions})", BAD_INPUT)

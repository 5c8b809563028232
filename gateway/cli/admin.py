"""``lockgate db``: the database schema."""

from __future__ import annotations

import typer
from sqlalchemy.engine import make_url

from gateway.cli.common import console, database, fail

db_app = typer.Typer(help="Database schema (migrations).", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or migrate the schema to REVISION (default: the newest)."""
    from gateway.store import migrate

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

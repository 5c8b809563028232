"""``lockgate operator``: operators, their roles and their secrets.

``bootstrap`` creates the first administrator (refused once any operator exists); an
administrator adds, changes, disables and enables operators; any operator changes their own
password or token. New passwords are typed twice at the terminal, or read from
``$LOCKGATE_NEW_PASSWORD`` in scripts. An API token (``--token``) is printed once.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Final

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from gateway.auth import manage
from gateway.auth import operators as operator_store
from gateway.auth.authorizer import Authorizer, Forbidden
from gateway.auth.operators import Operator
from gateway.auth.passwords import WeakPassword, hash_password, hash_token, new_token
from gateway.auth.roles import ACTION_DESCRIPTIONS, ROLES, TITLE_ACTIONS, role_table
from gateway.cli.common import (
    authenticate,
    console,
    database,
    fail,
    local,
    operator_name,
    print_json,
)
from gateway.cli.errors import BAD_INPUT
from gateway.domain.errors import DomainError
from gateway.domain.timeutil import utcnow
from gateway.store import migrate
from gateway.store.database import Database

NEW_PASSWORD_ENV: Final = "LOCKGATE_NEW_PASSWORD"

operator_app = typer.Typer(help="Operators and roles: who may change what.", no_args_is_help=True)


@contextmanager
def _store() -> Iterator[Database]:
    db = database()
    try:
        try:
            migrate.check_up_to_date(db.url)
        except Exception as exc:
            fail(str(exc))
        yield db
    finally:
        db.dispose()


def _new_password(name: str) -> str:
    """A new password for ``name``: ``$LOCKGATE_NEW_PASSWORD`` or typed twice."""
    from gateway.auth.passwords import check_password_policy

    given = os.environ.get(NEW_PASSWORD_ENV)
    if given is None:
        if not sys.stdin.isatty():
            fail(
                f"a new password for {name} is needed: run at a terminal or set {NEW_PASSWORD_ENV}",
                2,
            )
        given = getpass.getpass(f"new password for {name}: ")
        if getpass.getpass("the same again: ") != given:
            fail("the two passwords differ", 2)
    try:
        return check_password_policy(given)
    except WeakPassword as exc:
        fail(str(exc), 2)


def _run_logged(
    db: Database, actor: str, action: str, subject: str, fn: Callable[[Session], Operator]
) -> Operator:
    """Run an operator change in one transaction; a refusal is logged and shown."""
    try:
        with db.session() as s:
            return fn(s)
    except Forbidden as exc:
        manage.record_refusal(
            db, at=utcnow(), actor=actor, action=action, subjects=[subject], error=exc
        )
        fail(f"{exc.code}: {exc}")
    except DomainError as exc:
        fail(f"{exc.code}: {exc}")


def _name(name: str) -> str:
    """``name`` when it can be an operator's name; otherwise fail naming NAME (exit code 2)."""
    try:
        return operator_store.check_name(name)
    except DomainError as exc:
        fail(f"NAME: {name!r}: {exc}", BAD_INPUT)


def _authorizer(actor: str) -> Authorizer:
    return Authorizer(authenticated={actor})


@operator_app.command("bootstrap")
def operator_bootstrap(
    name: Annotated[str, typer.Argument(help="Login name of the first administrator.")],
    display_name: Annotated[
        str | None, typer.Option("--display-name", help="The person's name (default: NAME).")
    ] = None,
) -> None:
    """Create the first operator, an administrator with a password. Refused once any
    operator exists."""
    name = _name(name)
    with _store() as db:
        with db.session(readonly=True) as s:
            if operator_store.count(s) > 0:
                fail("operators exist already: an administrator adds new ones (operator add)")
        password_hash = hash_password(_new_password(name))
        try:
            with db.session() as s:
                op = manage.bootstrap(
                    s,
                    name=name,
                    at=utcnow(),
                    display_name=display_name,
                    password_hash=password_hash,
                )
        except DomainError as exc:
            fail(f"{exc.code}: {exc}")
    console.print(f"administrator {op.name} created; name it with --operator {op.name}")


@operator_app.command("add")
def operator_add(
    name: Annotated[str, typer.Argument(help="Login name of the new operator.")],
    role: Annotated[str, typer.Option("--role", help="Role (see `lockgate operator roles`).")],
    title: Annotated[
        str | None, typer.Option("--title", help='Job title, e.g. "operations manager".')
    ] = None,
    display_name: Annotated[
        str | None,
        typer.Option(
            "--display-name",
            help="The person's name as assignments name their project manager (default NAME).",
        ),
    ] = None,
    token: Annotated[
        bool, typer.Option("--token", help="An API token instead of a password (machines).")
    ] = False,
) -> None:
    """Add an operator (administrators only). Prints a new API token once with --token."""
    actor = operator_name()
    name = _name(name)
    if role not in ROLES:
        fail(f"--role: unknown role {role!r} (roles: {', '.join(ROLES)})", 2)
    with _store() as db:
        authenticate(db)
        secret = new_token() if token else None
        password_hash = None if token else hash_password(_new_password(name))
        op = _run_logged(
            db,
            actor,
            "operator.add",
            f"operator {name}",
            lambda s: manage.add_operator(
                s,
                _authorizer(actor),
                actor,
                name=name,
                role=role,
                at=utcnow(),
                display_name=display_name,
                title=title,
                password_hash=password_hash,
                token_hash=hash_token(secret) if secret else None,
            ),
        )
    console.print(f"operator {op.name} added with role {op.role}")
    if secret:
        console.print("API token (shown once; store it now, e.g. as LOCKGATE_TOKEN):")
        sys.stdout.write(secret + "\n")


def _change(actor: str, name: str, action: str, **changes: Any) -> Operator:
    with _store() as db:
        authenticate(db)
        return _run_logged(
            db,
            actor,
            action,
            f"operator {name}",
            lambda s: manage.change_operator(
                s, _authorizer(actor), actor, name, at=utcnow(), **changes
            ),
        )


@operator_app.command("set")
def operator_set(
    name: Annotated[str, typer.Argument(help="The operator to change.")],
    role: Annotated[str | None, typer.Option("--role", help="New role.")] = None,
    title: Annotated[str | None, typer.Option("--title", help='New title ("" clears it).')] = None,
    display_name: Annotated[str | None, typer.Option("--display-name", help="New name.")] = None,
) -> None:
    """Change an operator's role, title or display name (administrators only)."""
    actor = operator_name()
    name = _name(name)
    changes: dict[str, Any] = {}
    if role is not None:
        if role not in ROLES:
            fail(f"--role: unknown role {role!r} (roles: {', '.join(ROLES)})", 2)
        changes["role"] = role
    if title is not None:
        changes["title"] = title or None
    if display_name is not None:
        changes["display_name"] = display_name
    if not changes:
        fail("nothing to change: give --role, --title or --display-name", 2)
    op = _change(actor, name, "operator.change", **changes)
    console.print(f"operator {op.name}: role {op.role}, title {op.title or '-'}")


@operator_app.command("disable")
def operator_disable(name: Annotated[str, typer.Argument(help="The operator.")]) -> None:
    """Disable an operator: it can no longer authenticate or act (administrators only)."""
    _change(operator_name(), _name(name), "operator.change", active=False)
    console.print(f"operator {name} disabled")


@operator_app.command("enable")
def operator_enable(name: Annotated[str, typer.Argument(help="The operator.")]) -> None:
    """Enable a disabled operator again (administrators only)."""
    _change(operator_name(), _name(name), "operator.change", active=True)
    console.print(f"operator {name} enabled")


@operator_app.command("password")
def operator_password(
    name: Annotated[str | None, typer.Argument(help="The operator (default: yourself).")] = None,
) -> None:
    """Set a new password: your own, or (administrators) anyone's."""
    actor = operator_name()
    target = _name(name) if name is not None else actor
    password_hash = hash_password(_new_password(target))
    _change(actor, target, "operator.change", password_hash=password_hash)
    console.print(f"password of {target} changed")


@operator_app.command("token")
def operator_token(
    name: Annotated[str | None, typer.Argument(help="The operator (default: yourself).")] = None,
) -> None:
    """Issue a new API token (the old one stops working); printed once."""
    actor = operator_name()
    target = _name(name) if name is not None else actor
    secret = new_token()
    _change(actor, target, "operator.change", token_hash=hash_token(secret))
    console.print(f"new API token of {target} (shown once; store it now):")
    sys.stdout.write(secret + "\n")


@operator_app.command("list")
def operator_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every operator with role, title and state (never a secret)."""
    with _store() as db, db.session(readonly=True) as s:
        ops = operator_store.all_operators(s)
    if as_json:
        print_json([op.public() for op in ops])
        return
    table = Table(title=f"{len(ops)} operators")
    for col in ("name", "display name", "role", "title", "active", "with", "since"):
        table.add_column(col)
    for op in ops:
        table.add_row(
            op.name,
            escape(op.display_name),
            op.role,
            escape(op.title or "-"),
            "yes" if op.active else "[red]no[/]",
            op.secrets,
            local(op.created_at),
        )
    console.print(table)


@operator_app.command("roles")
def operator_roles(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The roles and the actions each allows (and what titles add)."""
    if as_json:
        print_json(
            {
                "roles": {
                    name: {"description": ROLES[name].description, "actions": actions}
                    for name, actions in role_table()
                },
                "titles": {t: sorted(a) for t, a in TITLE_ACTIONS.items()},
                "actions": ACTION_DESCRIPTIONS,
            }
        )
        return
    table = Table(title="roles")
    for col in ("role", "who", "actions"):
        table.add_column(col)
    for name, actions in role_table():
        table.add_row(name, ROLES[name].description, ", ".join(actions))
    console.print(table)
    for title, added in TITLE_ACTIONS.items():
        console.print(f'title "{title}" adds: {", ".join(sorted(added))}')


__all__ = ["operator_app"]

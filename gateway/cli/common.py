"""Shared plumbing of the CLI: global options, opening the store and the core, output."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from rich.console import Console

from gateway.cli.errors import BAD_INPUT, err_console, fail, validation_message
from gateway.cli.output import print_json
from gateway.config import ConfigError, Settings, load_settings
from gateway.core import Core
from gateway.domain.errors import DomainError
from gateway.domain.identifiers import Ident
from gateway.domain.localtime import local_text
from gateway.store.database import Database

console = Console(width=None if sys.stdout.isatty() else 120)
M = TypeVar("M", bound=BaseModel)
_IDENT: TypeAdapter[str] = TypeAdapter(Ident)


@dataclass
class CliState:
    """Global options given before the command."""

    config: str | None = None
    db_url: str | None = None
    operator: str | None = None
    acting: str | None = None
    """The operator a change is made by (set by :func:`operator_name`); :func:`open_core`
    authenticates it."""
    authenticated: str | None = None
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                overrides: dict[str, Any] = {}
                if self.db_url:
                    overrides["database"] = {"url": self.db_url}
                self._settings = load_settings(self.config, **overrides)
            except ConfigError as exc:
                fail(str(exc), BAD_INPUT)
        return self._settings


STATE = CliState()


def operator_name() -> str:
    """The operator acting: ``--operator`` or ``$LOCKGATE_OPERATOR``; required for changes."""
    import os

    name = STATE.operator or os.environ.get("LOCKGATE_OPERATOR")
    if not name:
        fail(
            "this command changes something: name the operator with --operator NAME "
            "(or set LOCKGATE_OPERATOR)",
            2,
        )
    STATE.acting = name
    return name


def authenticate(db: Database) -> str:
    """Authenticate the acting operator (:func:`operator_name`) once per process: with
    ``$LOCKGATE_TOKEN`` (an API token), ``$LOCKGATE_PASSWORD``, or a password typed at the
    terminal. Fails with a clear message (and the failure logged) otherwise."""
    import getpass
    import os

    from gateway.auth import operators as operator_store
    from gateway.auth.login import AuthenticationFailed, login, secret_from
    from gateway.domain.timeutil import utcnow

    name = STATE.acting or operator_name()
    if STATE.authenticated == name:
        return name
    with db.session(readonly=True) as s:
        if operator_store.count(s) == 0:
            fail(
                "no operator exists yet: create the first administrator with "
                "`lockgate operator bootstrap NAME`"
            )
    prompt = getpass.getpass if sys.stdin.isatty() else None
    try:
        login(db, name, secret_from(os.environ, name, prompt), at=utcnow())
    except AuthenticationFailed as exc:
        fail(str(exc))
    STATE.authenticated = name
    return name


def database() -> Database:
    from gateway.store.database import DatabaseUrlError

    try:
        return Database(STATE.settings.database.resolved_url())
    except DatabaseUrlError as exc:
        fail(str(exc))


@contextmanager
def open_core(*, upgrade: bool = False, sync: bool = False) -> Iterator[Core]:
    """A loaded :class:`Core` on the configured database (checked to be migrated).

    With ``sync`` the sync engine's planner and the keys' exposures are installed too
    (needed by commands that read or change what devices hold). The audit log and the role
    check are always installed: a command that named its operator (:func:`operator_name`)
    has it authenticated first, and the core accepts changes from that operator only."""
    from gateway.compose import build_core
    from gateway.store import migrate

    db = database()
    try:
        if upgrade:
            migrate.upgrade(db.url)
        else:
            try:
                migrate.check_up_to_date(db.url)
            except Exception as exc:
                fail(str(exc))
        acting = frozenset({authenticate(db)}) if STATE.acting else frozenset()
        core = build_core(STATE.settings, db=db, authenticated=acting, sync=sync)
        core.load()
        yield core
    finally:
        db.dispose()


@contextmanager
def domain_errors() -> Iterator[None]:
    """Turn a refused command into a clear message and exit code 1."""
    try:
        yield
    except DomainError as exc:
        fail(f"{exc.code}: {exc}")


def parse_instant(text: str | None, option: str) -> datetime | None:
    """An ISO 8601 instant; a naive one is read in the site's time zone."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option}: {text!r} is not an ISO 8601 date-time (e.g. 2026-11-23T14:00)", 2)
    if value.tzinfo is None:
        value = value.replace(tzinfo=STATE.settings.rules_config().timezone)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        fail(f"{option}: {text!r} lies outside the years 1 to 9999 in UTC", 2)


_NUMBER_RE = re.compile(r"^\d{1,10}$")


def credential_number(text: str, name: str) -> str:
    """``text`` when it has the shape of a credential number (a key serial of 9 digits, a tag
    or card number of 1 to 10 digits); otherwise fail naming ``name`` (exit code 2)."""
    value = text.strip()
    if not _NUMBER_RE.match(value):
        fail(
            f"{name}: {text!r} is not a credential number (a key serial is 9 digits, a tag or "
            "card number 1 to 10 digits)",
            BAD_INPUT,
        )
    return value


def identifier(text: str, name: str) -> str:
    """``text`` when it is an identifier (1 to 64 letters, digits and ``. _ : -``, starting
    with a letter or digit); otherwise fail naming ``name`` (exit code 2)."""
    try:
        return str(_IDENT.validate_python(text))
    except ValidationError as exc:
        fail(f"{name}: {text!r}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}", BAD_INPUT)


def validated(kind: type[M], fields: dict[str, Any], names: dict[str, str]) -> M:
    """``kind`` built from ``fields``; a validation error names the CLI option or argument
    (``names`` maps model fields to them) and exits with code 2."""
    try:
        return kind.model_validate(fields)
    except ValidationError as exc:
        fail(validation_message(exc, names), BAD_INPUT)


def local(dt: datetime | None) -> str:
    """``dt`` in the site's time zone, with the zone's label (``2026-11-23 09:00 CET``)."""
    return local_text(dt, STATE.settings.rules_config().timezone)


__all__ = [
    "STATE",
    "CliState",
    "authenticate",
    "console",
    "credential_number",
    "database",
    "domain_errors",
    "err_console",
    "fail",
    "identifier",
    "local",
    "open_core",
    "operator_name",
    "parse_instant",
    "print_json",
    "validated",
]

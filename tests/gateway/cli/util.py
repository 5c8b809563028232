"""Running ``lockgate`` in-process (typer's CliRunner) against a test database."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from typer.testing import CliRunner, Result

from gateway.cli import app
from gateway.cli.common import STATE, console, err_console
from gateway.core import Core
from gateway.domain.timeutil import utcnow
from gateway.store.database import Database
from tests.gateway.audit.util import Clock, add_operator, audited_core

runner = CliRunner()

_CLEARED = (
    "LOCKGATE_PASSWORD",
    "LOCKGATE_TOKEN",
    "LOCKGATE_NEW_PASSWORD",
    "LOCKGATE_OPERATOR",
    "LOCKGATE_CONFIG",
    "LOCKGATE_DATABASE__URL",
)


def lockgate(
    db: Database,
    *args: str,
    operator: str | None = None,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
) -> Result:
    """Run ``lockgate --db URL [--operator NAME] ARGS`` as a fresh process would."""
    for attr in ("config", "db_url", "operator", "acting", "authenticated", "_settings"):
        setattr(STATE, attr, None)
    # Wide, fixed consoles: output that does not depend on the terminal running the tests.
    console.width = err_console.width = 250
    environment: dict[str, str | None] = {name: None for name in _CLEARED}
    environment["COLUMNS"] = "250"
    if token is not None:
        environment["LOCKGATE_TOKEN"] = token
    environment.update(env or {})
    argv = ["--db", db.url, *(["--operator", operator] if operator else []), *args]
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return runner.invoke(app, argv, env=environment, input=input)
    finally:
        # `lockgate run` points the root logger at the stderr this run captured.
        root.handlers[:] = handlers
        root.setLevel(level)


def site(db: Database) -> Core:
    """The sample story, dated today, with operators ``admin`` (administrator), ``desk``
    (reception), ``front`` (issuer, title receptionist), ``boss`` (issuer, title operations
    manager), ``audit`` (auditor), ``hr`` (hr); each authenticates with the token
    ``token-of-NAME``."""
    loaded = utcnow() - timedelta(minutes=1)
    core = audited_core(db, Clock(loaded), today=loaded.date())
    add_operator(db, "admin", "administrator")
    add_operator(db, "desk", "reception")
    add_operator(db, "front", "issuer", title="receptionist")
    add_operator(db, "boss", "issuer", title="operations manager")
    add_operator(db, "audit", "auditor")
    add_operator(db, "hr", "hr")
    return core


def token(name: str) -> str:
    return f"token-of-{name}"

"""The root of the ``lockgate`` command line: its options and settings, shared by the full
command line (:mod:`gateway.cli.full`) and the one ``lockgate run`` starts with."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli.common import STATE
from gateway.cli.errors import LockgateGroup


def new_app() -> typer.Typer:
    """The ``lockgate`` group with its global options, no commands yet."""
    app = typer.Typer(
        cls=LockgateGroup,
        name="lockgate",
        help="lockgate: lock-system integration gateway for CLIQ-style keys and door controllers.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_global)
    return app


def _global(
    config: Annotated[
        str | None,
        typer.Option("--config", "-c", envvar="LOCKGATE_CONFIG", help="TOML configuration file."),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", envvar="LOCKGATE_DATABASE__URL", help="Database URL (overrides the config)."
        ),
    ] = None,
    operator: Annotated[
        str | None,
        typer.Option("--operator", envvar="LOCKGATE_OPERATOR", help="Operator performing changes."),
    ] = None,
) -> None:
    STATE.config = config
    STATE.db_url = db
    STATE.operator = operator

"""The ``lockgate`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.admin import db_app
from gateway.cli.agent import agent_command
from gateway.cli.audit import audit_app
from gateway.cli.cards import cards_app
from gateway.cli.common import STATE, console
from gateway.cli.credentials import explain_command, keys_app
from gateway.cli.devices import devices_app
from gateway.cli.documents import import_app, order_command, receipt_command, report_app
from gateway.cli.errors import LockgateGroup
from gateway.cli.facts import (
    agreements_app,
    applications_app,
    employments_app,
    orgs_app,
    persons_app,
    spaces_app,
)
from gateway.cli.operators import operator_app
from gateway.cli.retention import retention_app
from gateway.cli.review import review_app
from gateway.cli.run import run_command
from gateway.cli.schemas import schemas_app
from gateway.cli.sim import sim_app
from gateway.cli.station import station_command

app = typer.Typer(
    cls=LockgateGroup,
    name="lockgate",
    help="lockgate: lock-system integration gateway for CLIQ-style keys and door controllers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
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


app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(keys_app, name="keys")
app.add_typer(orgs_app, name="orgs")
app.add_typer(persons_app, name="persons")
app.add_typer(employments_app, name="employments")
app.add_typer(agreements_app, name="agreements")
app.add_typer(spaces_app, name="spaces")
app.add_typer(applications_app, name="applications")
app.add_typer(report_app, name="report")
app.command("explain")(explain_command)
app.command("receipt")(receipt_command)
app.command("order")(order_command)
app.command("run")(run_command)
app.command("agent")(agent_command)
app.add_typer(schemas_app, name="schemas")
app.command("station")(station_command)
app.add_typer(sim_app, name="sim")
app.add_typer(devices_app, name="devices")
app.add_typer(operator_app, name="operator")
app.add_typer(audit_app, name="audit")
app.add_typer(cards_app, name="cards")
app.add_typer(review_app, name="review")
app.add_typer(retention_app, name="retention")


@app.command("demo")
def demo(
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Run the story non-interactively; exit 0 only if every step behaved "
            "as expected. The last line is one JSON object.",
        ),
    ] = False,
    folder: Annotated[
        Path, typer.Option(help="Folder for the demo's database and files.", file_okay=False)
    ] = Path("demo"),
    mqtt: Annotated[bool, typer.Option(help="Use a private Mosquitto when installed.")] = True,
) -> None:
    """The seed story on a simulated site: agreements, key orders, manifests, receipts, an
    approved application, programming at a desk station, cylinders, a door controller, an
    ID06 block reaching the hardware, and a visitor card."""
    import asyncio
    import json

    from gateway.demo.runner import fresh_folder, run_demo

    fresh_folder(folder)
    summary = asyncio.run(run_demo(folder, console, once=once, use_broker=mqtt))
    print(json.dumps(summary), flush=True)
    if not summary["ok"]:
        raise typer.Exit(1)


def main() -> None:
    app()


__all__ = ["app", "main"]

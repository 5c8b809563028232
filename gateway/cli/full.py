"""The full ``lockgate`` command line: every command (imported by :func:`gateway.cli.main`
unless the command is ``run``, which needs only its own modules)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.admin import db_app
from gateway.cli.agent import agent_command
from gateway.cli.audit import audit_app
from gateway.cli.cards import cards_app
from gateway.cli.common import console
from gateway.cli.credentials import explain_command, keys_app
from gateway.cli.devices import devices_app
from gateway.cli.documents import import_app, order_command, receipt_command, report_app
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
from gateway.cli.root import new_app
from gateway.cli.run import run_command
from gateway.cli.schemas import schemas_app
from gateway.cli.sim import sim_app
from gateway.cli.station import station_command

app = new_app()

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

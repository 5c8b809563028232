"""``lockgate sim``: the simulators, each its own process speaking the real wire protocol."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import fail
from simulators.controller.cli import main as controller_main
from simulators.station.cli import main as station_main

sim_app = typer.Typer(
    help="Simulated stations, controllers and whole sites for test benches.", no_args_is_help=True
)
sim_app.command("station")(station_main)
sim_app.command("controller")(controller_main)


@sim_app.command("site")
def site_command(
    site_file: Annotated[
        Path | None,
        typer.Argument(help="Site file (TOML); default: the demo site shipped with lockgate."),
    ] = None,
    control_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Control interface port (0: a free one).")
    ] = 0,
) -> None:
    """Run a whole simulated site: stations on pseudo-terminals, Modbus controllers, offline
    cylinders and keys. Prints one JSON line with the control port and the gateway's device
    tables, then runs until Ctrl-C or SIGTERM."""
    from simulators.site import DEFAULT_SITE, SiteFileError, load_site, run_site

    try:
        spec = load_site(site_file or DEFAULT_SITE)
    except SiteFileError as exc:
        fail(str(exc), 2)
    asyncio.run(run_site(spec, control_port=control_port))

"""``lockgate sim uhppote``: run simulated UHPPOTE controllers until Ctrl-C or SIGTERM.

Prints one JSON line saying where they listen (UDP and TCP port, serial numbers, control
port), then serves until interrupted.
"""

from __future__ import annotations

from typing import Annotated

import typer

from simulators.controller.memory import DEFAULT_TIMEZONE
from simulators.serving import serve
from simulators.uhppote.controller import UhppoteController
from simulators.uhppote.controls import UhppoteSimulator
from simulators.uhppote.server import UhppoteServer

STANDARD_PORT = 60000


def _parse_controller(spec: str) -> tuple[int, int]:
    serial, _, doors = spec.partition(":")
    try:
        return int(serial), int(doors) if doors else 4
    except ValueError:
        raise typer.BadParameter(
            f"{spec!r}: expected SERIAL or SERIAL:DOORS", param_hint="--controller"
        ) from None


def main(
    controller: Annotated[
        list[str] | None,
        typer.Option(
            "--controller",
            help="A controller as SERIAL or SERIAL:DOORS (doors 1, 2 or 4); repeat for more.",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (UDP and TCP).")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            min=0,
            max=65535,
            help=f"UDP/TCP port; 0 picks a free one (the devices' own port is {STANDARD_PORT}).",
        ),
    ] = 0,
    udp_only: Annotated[
        bool, typer.Option("--udp-only", help="Serve UDP only (no TCP listener).")
    ] = False,
    capacity: Annotated[int, typer.Option(help="Card table size of each controller.")] = 20_000,
    events: Annotated[int, typer.Option(help="Event log size of each controller.")] = 10_000,
    control_port: Annotated[
        int,
        typer.Option("--control-port", min=0, max=65535, help="Control port (0: a free one)."),
    ] = 0,
    timezone: Annotated[
        str, typer.Option(help="Time zone the controllers' clocks are set in.")
    ] = DEFAULT_TIMEZONE,
) -> None:
    """Run simulated UHPPOTE access controllers speaking their UDP/TCP protocol."""
    specs = [_parse_controller(s) for s in controller or ["423187757:4"]]
    try:
        controllers = [
            UhppoteController(
                serial, doors=doors, capacity=capacity, event_capacity=events, timezone=timezone
            )
            for serial, doors in specs
        ]
        server = UhppoteServer(controllers, host=host, port=port, tcp=not udp_only)
        simulator = UhppoteSimulator(server, control_port=control_port)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    serve(simulator)

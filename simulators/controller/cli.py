"""``lockgate sim controller``: run one simulated door controller until Ctrl-C or SIGTERM.

Prints one JSON line saying where it listens (the Modbus address as driver options and the
control port), then serves until interrupted.
"""

from __future__ import annotations

from typing import Annotated

import typer

from drivers.modbusdoor import registers as rm
from simulators.controller.controls import ControllerSimulator
from simulators.controller.memory import DEFAULT_TIMEZONE, ControllerMemory
from simulators.controller.server import ControllerServer
from simulators.serving import serve


def main(
    controller_id: Annotated[
        str, typer.Option("--controller-id", help="Identity the controller reports (ASCII).")
    ] = "controller-1",
    doors: Annotated[int, typer.Option(help="Number of doors, 1..16.")] = 4,
    capacity: Annotated[int, typer.Option(help="Allow-list capacity in entries.")] = 2000,
    transport: Annotated[str, typer.Option(help="'tcp' or 'rtu'.")] = "tcp",
    host: Annotated[str, typer.Option(help="TCP address to listen on.")] = "127.0.0.1",
    port: Annotated[
        str | None,
        typer.Option(
            help="TCP port (0 or none: a free port); for rtu a serial device to open "
            "(none: a new pseudo-terminal pair, whose client path is printed)."
        ),
    ] = None,
    unit: Annotated[int, typer.Option(help="Modbus unit id, 1..247.")] = 1,
    baudrate: Annotated[int, typer.Option(help="RTU baud rate.")] = 19200,
    control_port: Annotated[
        int, typer.Option("--control-port", help="Control interface port (0: a free port).")
    ] = 0,
    timezone: Annotated[
        str, typer.Option(help="Time zone the controller evaluates schedules in.")
    ] = DEFAULT_TIMEZONE,
) -> None:
    """Run a simulated Modbus door controller speaking the lockgate register map."""
    if transport not in ("tcp", "rtu"):
        raise typer.BadParameter(
            f"must be 'tcp' or 'rtu', got {transport!r}", param_hint="--transport"
        )
    if not 1 <= doors <= rm.MAX_DOORS:
        raise typer.BadParameter(f"must be in 1..{rm.MAX_DOORS}", param_hint="--doors")
    if not 1 <= capacity <= rm.MAX_CAPACITY:
        raise typer.BadParameter(f"must be in 1..{rm.MAX_CAPACITY}", param_hint="--capacity")
    if not 0 <= control_port <= 65535:
        raise typer.BadParameter("must be in 0..65535", param_hint="--control-port")
    tcp_port = 0
    device: str | None = None
    if transport == "tcp":
        try:
            tcp_port = int(port) if port else 0
        except ValueError:
            raise typer.BadParameter(f"not a TCP port: {port!r}", param_hint="--port") from None
        if not 0 <= tcp_port <= 65535:
            raise typer.BadParameter("must be in 0..65535", param_hint="--port")
    else:
        device = port or None
    try:
        memory = ControllerMemory(
            controller_id=controller_id, doors=doors, capacity=capacity, timezone=timezone
        )
        server = ControllerServer(
            memory,
            transport="tcp" if transport == "tcp" else "rtu",
            host=host,
            port=tcp_port,
            device=device,
            baudrate=baudrate,
            unit=unit,
        )
        simulator = ControllerSimulator(server, control_port=control_port)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    serve(simulator)

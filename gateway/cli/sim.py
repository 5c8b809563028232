"""``lockgate sim``: the simulators, each its own process speaking the real wire protocol."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import fail
from simulators.controller.cli import main as controller_main
from simulators.osdp.cli import main as osdp_main
from simulators.station.cli import main as station_main
from simulators.uhppote.cli import main as uhppote_main

sim_app = typer.Typer(
    help="Simulated stations, controllers and whole sites for test benches.", no_args_is_help=True
)
sim_app.command("station")(station_main)
sim_app.command("controller")(controller_main)
sim_app.command("osdp")(osdp_main)
sim_app.command("uhppote")(uhppote_main)


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


def call_arguments(arguments: list[str]) -> dict[str, object]:
    """``name=value`` arguments of ``sim call`` as a command's JSON arguments: a value that is
    a JSON number (without leading zeros), ``true``, ``false`` or ``null`` is sent as that,
    ``'text'`` or ``"text"`` as the text between the quotes, anything else as text."""
    params: dict[str, object] = {}
    for arg in arguments:
        name, sep, value = arg.partition("=")
        if not sep or not name:
            raise ValueError(f"argument {arg!r}: expected name=value")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            params[name] = value[1:-1]
            continue
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        params[name] = parsed if isinstance(parsed, bool | int | float | None) else value
    return params


@sim_app.command("call")
def call_command(
    command: Annotated[str, typer.Argument(help="Control command, e.g. insert, visit, present.")],
    arguments: Annotated[
        list[str] | None,
        typer.Argument(
            help="Arguments as name=value: numbers, true, false and null are sent as such "
            "(JSON), anything else as text; quote a number to send it as text (serial='007')."
        ),
    ] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="The simulator's control port.")] = 0,
    host: Annotated[str, typer.Option(help="The simulator's control host.")] = "127.0.0.1",
) -> None:
    """Send one command to a running simulator's control interface and print the reply
    (``lockgate sim call --port P help`` lists the commands)."""
    from simulators.control import ControlClient, ControlError

    if not port:
        fail("--port: give the control port the simulator printed", 2)
    try:
        params = call_arguments(arguments or [])
    except ValueError as exc:
        fail(str(exc), 2)

    async def call() -> object:
        async with ControlClient(host, port) as client:
            return await client.call(command, **params)

    try:
        result = asyncio.run(call())
    except ControlError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot reach the simulator at {host}:{port}: {exc}")
    print(json.dumps(result, indent=2, ensure_ascii=False, default=str))

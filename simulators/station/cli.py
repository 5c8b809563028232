"""Command line of the key-station simulator (``lockgate sim station`` /
``python -m simulators.station``): one station on a pseudo-terminal, its virtual keys and
cylinders, and the control server, until Ctrl-C or SIGTERM.

It prints ``pty: PATH`` (the serial port to give the driver) and ``control: HOST:PORT``
(the JSON-lines control interface) as its first two lines.
"""

from __future__ import annotations

import asyncio
import signal
from enum import StrEnum
from typing import Annotated

import typer

from drivers.serialstation.codes import Mounting
from simulators.station.device import StationConfig
from simulators.station.simulator import (
    DEFAULT_TIMEZONE,
    SimWorld,
    StationSimulator,
    load_timezone,
    parse_cylinder_id,
)


class MountingChoice(StrEnum):
    DESK = "desk"
    WALL = "wall"


def parse_serials(value: str) -> list[str]:
    """Comma-separated key serials (blank items ignored, duplicates refused)."""
    serials = [s.strip() for s in value.split(",") if s.strip()]
    if len(set(serials)) != len(serials):
        raise ValueError("keys: a serial is listed twice")
    return serials


def parse_cylinders(value: str) -> list[int]:
    """Comma-separated cylinder ids or inclusive ranges (``100,200-205``)."""
    out: list[int] = []
    for item in (s.strip() for s in value.split(",")):
        if not item:
            continue
        lo, sep, hi = item.partition("-")
        first = parse_cylinder_id(lo, "cylinders")
        last = parse_cylinder_id(hi, "cylinders") if sep else first
        if last < first or last - first >= 100_000:
            raise ValueError(f"cylinders: bad range {item!r}")
        out.extend(range(first, last + 1))
    if len(set(out)) != len(out):
        raise ValueError("cylinders: a cylinder is listed twice")
    return out


async def run(
    *,
    config: StationConfig,
    keys: list[str],
    cylinders: list[int],
    control_port: int,
    timezone: str,
) -> None:
    """Run the simulator until SIGINT or SIGTERM."""
    world = SimWorld(timezone=timezone)
    for serial in keys:
        world.add_key(serial)
    for cylinder in cylinders:
        world.add_cylinder(cylinder)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with StationSimulator(world=world, config=config, control_port=control_port) as sim:
            print(f"pty: {sim.pty_path}", flush=True)
            print(f"control: 127.0.0.1:{sim.control_port}", flush=True)
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main(
    station_id: Annotated[
        str, typer.Option("--station-id", help="Station id announced in HELLO.")
    ] = "station-1",
    baud: Annotated[
        int, typer.Option("--baud", min=0, help="Emulated line speed (0 = unlimited).")
    ] = 115200,
    mounting: Annotated[
        MountingChoice, typer.Option("--mounting", help="desk or wall.")
    ] = MountingChoice.DESK,
    keys: Annotated[
        str, typer.Option("--keys", help="Comma-separated serials of keys to create.")
    ] = "",
    cylinders: Annotated[
        str, typer.Option("--cylinders", help="Cylinder ids to create, e.g. 100,200-205.")
    ] = "",
    control_port: Annotated[
        int, typer.Option("--control-port", min=0, max=65535, help="0 picks a free port.")
    ] = 0,
    timezone: Annotated[
        str, typer.Option("--timezone", help="Site time zone for schedules.")
    ] = DEFAULT_TIMEZONE,
    max_payload: Annotated[
        int, typer.Option("--max-payload", min=64, max=4096, help="Largest frame payload.")
    ] = StationConfig.max_payload,
) -> None:
    """Simulate a key programming station on a pseudo-terminal."""
    try:
        load_timezone(timezone)
        config = StationConfig(
            station_id=station_id,
            mounting=Mounting.WALL if mounting is MountingChoice.WALL else Mounting.DESK,
            baudrate=baud,
            max_payload=max_payload,
        )
        serials = parse_serials(keys)
        cylinder_ids = parse_cylinders(cylinders)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    asyncio.run(
        run(
            config=config,
            keys=serials,
            cylinders=cylinder_ids,
            control_port=control_port,
            timezone=timezone,
        )
    )

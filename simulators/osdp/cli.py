"""``lockgate sim osdp``: run simulated OSDP readers on a pseudo-terminal until Ctrl-C or
SIGTERM.

Prints one JSON line saying where they are (the serial port the panel opens, each reader's
address and key state, the control port), then serves until interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drivers.osdp.keys import KeyFileError
from simulators.osdp.controls import OsdpSimulator
from simulators.serving import serve


def main(
    address: Annotated[
        list[int] | None,
        typer.Option(help="A reader's OSDP address, 0..126 (repeat for more readers)."),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="SCBKs of the readers (the driver's key-file format, mode 0600); a reader "
            "without a key starts on the default key, in install mode. Keys the panel sets "
            "are written back.",
        ),
    ] = None,
    control_port: Annotated[
        int, typer.Option("--control-port", help="Control interface port (0: a free port).")
    ] = 0,
) -> None:
    """Run simulated OSDP readers (libosdp peripheral devices) with the secure channel."""
    addresses = address or [1]
    for a in addresses:
        if not 0 <= a <= 126:
            raise typer.BadParameter(f"must be in 0..126, got {a}", param_hint="--address")
    if not 0 <= control_port <= 65535:
        raise typer.BadParameter("must be in 0..65535", param_hint="--control-port")
    try:
        simulator = OsdpSimulator.from_key_file(addresses, key_file, control_port=control_port)
    except (KeyFileError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    serve(simulator)

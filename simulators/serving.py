"""Running a simulator from its command line until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any, Protocol

import typer


class Servable(Protocol):
    """A simulator that starts, describes where it listens, and closes."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...


def serve(simulator: Servable) -> None:
    """Start ``simulator``, print ``{"listening": ...}`` as one JSON line, and run it until
    SIGINT or SIGTERM; an address in use (or any OS error) is a one-line error, exit 1."""
    try:
        asyncio.run(_serve(simulator))
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


async def _serve(simulator: Servable) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await simulator.start()
        try:
            print(json.dumps({"listening": simulator.describe()}), flush=True)
            await stop.wait()
        finally:
            await simulator.close()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    sys.stdout.flush()

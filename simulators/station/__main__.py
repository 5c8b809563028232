"""``python -m simulators.station``: run the key-station simulator."""

from __future__ import annotations

import typer

from simulators.station.cli import main

if __name__ == "__main__":
    typer.run(main)

"""``python -m simulators.osdp``: run simulated OSDP readers."""

from __future__ import annotations

import typer

from simulators.osdp.cli import main

typer.run(main)

"""``python -m simulators.controller``: run one simulated door controller."""

from __future__ import annotations

import typer

from simulators.controller.cli import main

typer.run(main)

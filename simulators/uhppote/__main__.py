"""``python -m simulators.uhppote``: run simulated UHPPOTE controllers."""

from __future__ import annotations

import typer

from simulators.uhppote.cli import main

typer.run(main)

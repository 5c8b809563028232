"""The ``lockgate`` command line.

:func:`main` runs it. ``lockgate run`` (the long-running service) starts with only the
modules it needs: importing every other command's modules (reports, PDF documents,
simulators, ...) would cost it a second or more of start-up. Every other command line gets
the full :data:`app` (:mod:`gateway.cli.full`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

_VALUED_OPTIONS = frozenset({"--config", "-c", "--db", "--operator"})
"""Global options that take a value as the next argument."""


def command_of(argv: Sequence[str]) -> str | None:
    """The command named by ``argv`` (after the global options), or None."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUED_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def main() -> None:
    """Run the ``lockgate`` command line on ``sys.argv``."""
    if command_of(sys.argv[1:]) == "run":
        from gateway.cli.root import new_app
        from gateway.cli.run import run_command

        run_app = new_app()
        run_app.command("run")(run_command)
        run_app()
    else:
        from gateway.cli.full import app

        app()


def __getattr__(name: str) -> Any:
    if name == "app":
        from gateway.cli.full import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "command_of", "main"]

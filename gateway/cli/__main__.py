"""``python -m gateway.cli``: the ``lockgate`` command line without its script."""

from __future__ import annotations

from gateway.cli import main

main()

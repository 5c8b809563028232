"""``lockgate run`` starts without importing the other commands' modules."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.cli import command_of


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["run"], "run"),
        (["--config", "x.toml", "run", "--role", "core"], "run"),
        (["-c", "run", "persons"], "persons"),
        (["--db", "sqlite:///x", "--operator", "ops", "run"], "run"),
        (["--db=sqlite:///x", "run"], "run"),
        (["--help"], None),
        ([], None),
        (["persons", "run"], "persons"),
    ],
)
def test_the_command_is_found_after_the_global_options(
    argv: list[str], command: str | None
) -> None:
    assert command_of(argv) == command


def test_run_imports_only_what_it_needs() -> None:
    probe = (
        "import sys; sys.argv = ['lockgate', 'run', '--help'];\n"
        "from gateway.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('gateway.cli.full', 'gateway.cli.documents', 'gateway.cli.sim',"
        " 'fpdf') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "lockgate run" in out
    assert out.strip().splitlines()[-1] == "HEAVY []"


def test_every_other_command_line_gets_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from gateway.cli import main; main()", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    for command in ("run", "persons", "demo", "sim", "station", "report"):
        assert command in out

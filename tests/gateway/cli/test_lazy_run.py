"""``lockgate run`` starts without importing the other commands' modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_run_imports_the_web_console_and_the_site_hub_only_when_they_serve(
    tmp_path: Path,
) -> None:
    """Without ``web.enabled`` and ``--sites`` the gateway starts without their modules."""
    probe = (
        "import asyncio, os, signal, sys\n"
        "from gateway.cli.run import serve\n"
        "from gateway.config import Settings\n"
        f"settings = Settings(database={{'url': 'sqlite:///{tmp_path}/run.db'}},"
        " mqtt={'enabled': False})\n"
        "async def main():\n"
        "    task = asyncio.create_task(serve(settings), name='serve')\n"
        "    while 'gateway.compose' not in sys.modules or not any(\n"
        "        t.get_name() == 'lockgate-clock' for t in asyncio.all_tasks()):\n"
        "        assert not task.done(), task.result()\n"
        "        await asyncio.sleep(0.01)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return await task\n"
        "code = asyncio.run(main())\n"
        "print('LOADED', code, [m for m in ('gateway.web', 'gateway.agent') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip().splitlines()[-1] == "LOADED 0 []"

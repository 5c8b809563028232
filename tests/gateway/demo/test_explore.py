"""What the running demo suggests trying works as printed, also when ``lockgate`` is not on
the PATH (after ``make demo`` it is in ``.venv/bin``, which is not activated). The demo itself
is run, and its suggestions tried, by ``test_demo.py``."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from gateway.demo.runner import explore_lines, lockgate_command

BIN = Path(sys.executable).parent
BARE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""A PATH without the virtual environment, as in a shell after ``make demo``."""


def shell(command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PATH": BARE_PATH, "COLUMNS": "200"},
    )


def test_the_command_is_lockgate_only_when_that_is_the_one_on_the_path() -> None:
    assert lockgate_command(sys.executable, f"{BIN}:{BARE_PATH}") == "lockgate"
    printed = lockgate_command(sys.executable, BARE_PATH)
    assert printed == shlex.quote(str(BIN / "lockgate"))
    assert shell(f"{printed} --help").returncode == 0
    assert shell("lockgate --help").returncode != 0  # the reason for all this


def test_without_the_script_python_runs_the_module(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    printed = lockgate_command(str(fake), BARE_PATH)
    assert printed == f"{shlex.quote(str(fake))} -m gateway.cli"
    ran = shell(f"{shlex.quote(sys.executable)} -m gateway.cli --help")
    assert ran.returncode == 0 and "explain" in ran.stdout


def test_mqtt_tools_are_suggested_only_when_installed(tmp_path: Path) -> None:
    def lines(path: str) -> list[str]:
        return explore_lines(
            db_url="sqlite:////x/lockgate-demo.db",
            control_port=1234,
            broker_port=1883,
            base_topic="lockgate",
            folder=tmp_path,
            lockgate="lockgate",
            path=path,
        )

    without = lines(str(tmp_path))
    assert not any(line.split()[:1] == ["mosquitto_sub"] for line in without)
    assert any("install mosquitto-clients" in line for line in without)
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("mosquitto_sub", "mosquitto_pub"):
        (tools / name).write_text("#!/bin/sh\n", encoding="utf-8")
        (tools / name).chmod(0o755)
    with_tools = lines(str(tools))
    assert any(line.strip().startswith(str(tools / "mosquitto_sub")) for line in with_tools)

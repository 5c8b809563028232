"""``lockgate sim uhppote`` as a process: it says where it listens, answers the independent
client over UDP and TCP, takes control commands, and stops on SIGTERM."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from uhppoted.uhppote_async import UhppoteAsync

from simulators.control import ControlClient
from tests.simulators.processes import start_simulator, stop_simulator

ROOT = Path(__file__).parents[3]


def _start(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    return start_simulator(
        [sys.executable, "-c", "from gateway.cli import main; main()", "sim", "uhppote", *args]
    )


async def test_cli_serves_several_controllers_and_stops_on_sigterm() -> None:
    proc, where = _start("--controller", "11:1", "--controller", "22:2", "--capacity", "10")
    try:
        assert where["controllers"] == [11, 22]
        assert where["transports"] == ["udp", "tcp"]
        client = UhppoteAsync(bind="127.0.0.1")
        for protocol in ("udp", "tcp"):
            reply = await client.get_controller(
                (22, f"127.0.0.1:{where['port']}", protocol), timeout=2
            )
            assert reply.controller == 22
        async with ControlClient("127.0.0.1", where["control_port"]) as control:
            status = await control.call("status", serial=11)
            assert list(status["doors"]) == ["1"]
            assert status["capacity"] == 10
    finally:
        assert stop_simulator(proc) == 0


def test_cli_refuses_a_bad_controller() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from gateway.cli import main; main()",
            "sim",
            "uhppote",
            "--controller",
            "5:3",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "doors: a UHPPOTE controller has 1, 2 or 4 doors, got 3" in done.stderr

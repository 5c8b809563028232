"""``python -m simulators.controller`` as a process: it says where it listens, serves a
driver, and stops on SIGTERM."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from drivers.base import AllowEntry
from drivers.modbusdoor import ModbusDoorController
from simulators.control import ControlClient
from tests.simulators.processes import start_simulator, stop_simulator

ROOT = Path(__file__).parents[3]


def _start(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    return start_simulator([sys.executable, "-m", "simulators.controller", *args])


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
async def test_cli_serves_a_driver_and_stops_on_sigterm(transport: str) -> None:
    proc, where = _start(
        "--controller-id", "cli-ctl", "--doors", "2", "--capacity", "50",
        "--transport", transport, "--control-port", "0",
    )  # fmt: skip
    try:
        assert where["controller_id"] == "cli-ctl"
        assert where["transport"] == transport
        options = {
            k: v for k, v in where.items() if k not in ("controller_id", "control_port", "device")
        }
        if transport == "rtu":
            assert where["device"] != where["port"]
        drv = ModbusDoorController.from_options({**options, "timeout_s": 1.0})
        async with drv:
            info = await drv.read_info()
            assert (info.controller_id, info.doors, info.capacity) == ("cli-ctl", 2, 50)
            await drv.write_allow_list([AllowEntry(credential=9, doors_mask=2)], [])
        async with ControlClient("127.0.0.1", where["control_port"]) as control:
            assert (await control.call("present", credential=9, door=2))["granted"]
    finally:
        assert stop_simulator(proc) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--transport", "udp"], "--transport"),
        (["--doors", "17"], "--doors"),
        (["--port", "http"], "--port"),
        (["--controller-id", "has space"], "controller_id"),
        (["--timezone", "Nowhere/Town"], "timezone"),
    ],
)
def test_cli_refuses_bad_arguments(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simulators.controller", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr

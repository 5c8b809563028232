"""``lockgate sim call``: arguments reach a running simulator with their JSON types."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from gateway.cli.sim import call_arguments
from simulators.controller import ControllerMemory, ControllerServer, ControllerSimulator

LOCKGATE = str(Path(sys.executable).with_name("lockgate"))


def test_values_are_sent_as_json_where_they_are_json() -> None:
    assert call_arguments(
        [
            "enabled=false",
            "frozen=true",
            "seconds=0.5",
            "door=2",
            "open=null",
            "serial=007",
            "name=desk-1",
            "code='12'",
            'at="2026-01-01T00:00:00Z"',
            "empty=",
        ]
    ) == {
        "enabled": False,
        "frozen": True,
        "seconds": 0.5,
        "door": 2,
        "open": None,
        "serial": "007",
        "name": "desk-1",
        "code": "12",
        "at": "2026-01-01T00:00:00Z",
        "empty": "",
    }
    with pytest.raises(ValueError, match="expected name=value"):
        call_arguments(["enabled"])


async def test_a_boolean_argument_reaches_the_simulator() -> None:
    memory = ControllerMemory(controller_id="cli-1")
    async with ControllerSimulator(ControllerServer(memory)) as sim:
        assert sim.control is not None
        for enabled in ("true", "false"):
            process = await asyncio.create_subprocess_exec(
                LOCKGATE,
                "sim",
                "call",
                "--port",
                str(sim.control.port),
                "fault",
                "kind=reject_commits",
                f"enabled={enabled}",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await process.communicate()
            assert process.returncode == 0, err.decode()
            assert json.loads(out)["reject_commits"] is (enabled == "true")
            assert memory.faults.reject_commits is (enabled == "true")

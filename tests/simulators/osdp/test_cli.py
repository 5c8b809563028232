"""``python -m simulators.osdp`` (``lockgate sim osdp``) as a process: it says where its
readers are, a driver opens them with the secure channel, ``lockgate sim call`` presents a
card, and it stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from drivers.base import AllowEntry, ControllerEventKind
from drivers.osdp import OsdpReaderDriver, Scbk
from drivers.osdp.keys import store_keys
from tests.simulators.processes import start_simulator, stop_simulator

ROOT = Path(__file__).parents[3]
LOCKGATE = str(Path(sys.executable).with_name("lockgate"))


def _start(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    return start_simulator([sys.executable, "-m", "simulators.osdp", *args])


async def test_cli_serves_a_panel_and_stops_on_sigterm(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    store_keys(keys, {5: Scbk.generate()})
    proc, where = _start("--address", "5", "--key-file", str(keys), "--control-port", "0")
    try:
        assert [(r["address"], r["key"]) for r in where["readers"]] == [(5, "own")]
        drv = OsdpReaderDriver.from_options(
            {"port": where["port"], "address": 5, "key_file": str(keys),
             "state_dir": str(tmp_path / "state")}
        )  # fmt: skip
        async with drv:
            await drv.write_allow_list([AllowEntry(4000123, 1)], [])
            call = await asyncio.create_subprocess_exec(
                LOCKGATE, "sim", "call", "--port", str(where["control_port"]),
                "present", "card=4000123",
                stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, _ = await call.communicate()
            assert call.returncode == 0
            assert json.loads(out) == {"queued": True}
            deadline = asyncio.get_running_loop().time() + 15
            while not [
                e for e in await drv.read_events(0) if e.kind is ControllerEventKind.GRANTED
            ]:
                assert asyncio.get_running_loop().time() < deadline, "no grant"
                await asyncio.sleep(0.02)
    finally:
        assert stop_simulator(proc) == 0


def test_cli_refuses_bad_arguments(tmp_path: Path) -> None:
    loose = tmp_path / "keys.json"
    store_keys(loose, {5: Scbk.generate()})
    loose.chmod(0o644)
    for args, message in (
        (["--address", "200"], "--address"),
        (["--key-file", str(loose)], "mode 0644"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "simulators.osdp", *args],
            cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert result.returncode == 2
        assert message in result.stderr


def test_lockgate_sim_has_the_osdp_command() -> None:
    from typer.testing import CliRunner

    from gateway.cli import app

    result = CliRunner().invoke(app, ["sim", "osdp", "--help"])
    assert result.exit_code == 0
    assert "--key-file" in result.output

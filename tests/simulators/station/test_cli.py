"""The simulator as a separate process: starts, serves, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from drivers.base import KeyEventKind, StationMounting
from drivers.serialstation import SerialKeyStation
from simulators.control import ControlClient
from simulators.station.cli import parse_cylinders, parse_serials

ROOT = Path(__file__).resolve().parents[3]


async def read_line(proc: subprocess.Popen[bytes], buffer: bytearray, within: float) -> str:
    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while b"\n" not in buffer:
        if loop.time() > deadline or proc.poll() is not None:
            raise AssertionError(f"simulator printed {bytes(buffer)!r} and then nothing")
        try:
            chunk = os.read(proc.stdout.fileno(), 4096)
        except BlockingIOError:
            await asyncio.sleep(0.02)
            continue
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode()


def start(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "simulators.station", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def test_simulator_process_serves_the_driver_and_stops_on_sigterm() -> None:
    proc = start(
        "--station-id", "cli-1", "--keys", "100000001,100000002", "--cylinders", "10-12",
        "--control-port", "0", "--baud", "0", "--mounting", "wall",
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        buffer = bytearray()
        pty_line = await read_line(proc, buffer, 20)
        control_line = await read_line(proc, buffer, 5)
        assert pty_line.startswith("pty: /dev/")
        assert control_line.startswith("control: 127.0.0.1:")
        pty_path = pty_line.removeprefix("pty: ")
        port = int(control_line.rsplit(":", 1)[1])
        async with ControlClient("127.0.0.1", port) as client:
            assert len(await client.call("keys")) == 2
            assert [c["cylinder"] for c in await client.call("cylinders")] == [10, 11, 12]
            await client.call("insert", serial="100000002")
            async with SerialKeyStation(port=pty_path, timeout_s=0.5) as station:
                assert station.info.station_id == "cli-1"
                assert station.info.mounting is StationMounting.WALL
                event = await asyncio.wait_for(anext(aiter(station.events())), 5)
                assert (event.kind, event.serial) == (KeyEventKind.INSERTED, "100000002")
                assert (await station.read_key()).serial == "100000002"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_bad_arguments_are_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simulators.station", "--timezone", "Mars/Olympus"],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert b"timezone" in result.stderr


def test_list_arguments() -> None:
    assert parse_serials(" a, b ,,c") == ["a", "b", "c"]
    assert parse_cylinders("5,10-12") == [5, 10, 11, 12]
    for bad in ("0", "12-10", "x", "1,1"):
        with pytest.raises(ValueError, match="cylinders"):
            parse_cylinders(bad)
    with pytest.raises(ValueError, match="keys"):
        parse_serials("a,a")

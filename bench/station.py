"""Benchmark: program a 500-cylinder access list through the real driver and the simulated
station (a separate process on a pseudo-terminal at an emulated 115200 baud).

Prints one JSON object as its last line:

* ``wire_ratio``: wall time of a whole full write (``write_key`` from its first byte to the
  verified read-back: framing, ACK turnarounds, the station's commit) / the time the
  canonical image bytes alone need on the line at 115200 baud 8N1 (10 bits per byte);
  the median of three writes. Target <= 1.10.
* ``delta_bytes_ratio``: every byte the host sends for a one-cylinder change (all frames of
  the write, read-back included) / every byte it sends for the full list (the same, for the
  last full write); target <= 0.02.
* ``full_write_ms``, ``delta_write_ms``, ``bytes_full``, ``bytes_delta`` and the sizes
  behind them; ``protocol_version`` and ``max_frame_payload`` as the station announced.

The station runs with its defaults; ``--max-payload N`` starts it with another frame size
(for comparison: the ratios above are defined for the defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drivers.base import (  # noqa: E402
    AccessEntry,
    BlacklistEntry,
    HardwareSchedule,
    KeyImage,
    ScheduleWindow,
)
from drivers.serialstation import SerialKeyStation, canonical, encode_image  # noqa: E402
from simulators.control import ControlClient  # noqa: E402

BAUD = 115200
CYLINDERS = 500
RUNS = 3
SERIALS = [f"1000000{i:02d}" for i in range(1, RUNS + 1)]


def access_list(seed: int) -> tuple[AccessEntry, ...]:
    """500 cylinders of a site, with the windows and schedules access applications give."""
    rnd = random.Random(seed)
    cylinders = sorted(rnd.sample(range(1_000_000, 1_050_000), CYLINDERS))
    windows = [
        (None, None),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)),
        (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 9, 1, tzinfo=UTC)),
    ]
    out = []
    for cylinder in cylinders:
        start, end = rnd.choice(windows)
        out.append(AccessEntry(cylinder, start, end, rnd.choice((0, 0, 1, 2))))
    return tuple(out)


def key_image(serial: str, revision: int, access: tuple[AccessEntry, ...]) -> KeyImage:
    return KeyImage(
        serial=serial,
        revision=f"{revision:016x}",
        enabled=True,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        valid_until=datetime(2027, 1, 1, tzinfo=UTC),
        revalidate_by=datetime(2026, 4, 1, tzinfo=UTC),
        schedules=(
            HardwareSchedule(1, (ScheduleWindow(0x1F, 6 * 60, 19 * 60),)),
            HardwareSchedule(2, (ScheduleWindow(0x7F, 0, 1440),)),
        ),
        access=access,
        blacklists=(BlacklistEntry(access[0].cylinder, 3, ("100000077",)),),
    )


async def read_line(proc: subprocess.Popen[bytes], within: float) -> str:
    assert proc.stdout is not None
    buffer = b""
    deadline = time.monotonic() + within
    while not buffer.endswith(b"\n"):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"simulator did not start: {buffer!r}")
        try:
            buffer += os.read(proc.stdout.fileno(), 1)
        except BlockingIOError:
            await asyncio.sleep(0.01)
    return buffer.decode().strip()


def start_simulator(max_payload: int | None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "simulators.station", "--baud", str(BAUD)]
    command += ["--keys", ",".join(SERIALS), "--control-port", "0"]
    if max_payload is not None:
        command += ["--max-payload", str(max_payload)]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE)


async def bench(max_payload: int | None = None) -> dict[str, float | int]:
    proc = start_simulator(max_payload)
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        pty = (await read_line(proc, 20)).removeprefix("pty: ")
        port = int((await read_line(proc, 5)).rsplit(":", 1)[1])
        async with (
            ControlClient("127.0.0.1", port) as control,
            SerialKeyStation(port=pty, baudrate=BAUD, device_id="bench") as station,
        ):
            events = station.events()
            full_s, full_bytes, image_bytes, full_frames = [], [], 0, 0
            access = access_list(seed=42)
            for run, serial in enumerate(SERIALS):
                if run:
                    await control.call("remove")
                    await asyncio.wait_for(anext(events), 5)
                await control.call("insert", serial=serial)
                await asyncio.wait_for(anext(events), 5)
                image = key_image(serial, 1, access)
                image_bytes = len(encode_image(image))
                started = time.perf_counter()
                result = await station.write_key(image)
                full_s.append(time.perf_counter() - started)
                assert not result.delta
                full_bytes.append(result.bytes_sent)
                full_frames = result.frames_sent
            changed = dataclasses.replace(
                image, revision=f"{2:016x}", access=(*access, AccessEntry(2_000_000))
            )
            started = time.perf_counter()
            delta = await station.write_key(changed)
            delta_s = time.perf_counter() - started
            assert delta.delta
            assert await station.read_key() == canonical(changed)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    full = statistics.median(full_s)
    minimal = image_bytes * 10 / BAUD
    return {
        "wire_ratio": round(full / minimal, 4),
        "delta_bytes_ratio": round(delta.bytes_sent / full_bytes[-1], 4),
        "full_write_ms": round(full * 1000, 1),
        "delta_write_ms": round(delta_s * 1000, 1),
        "bytes_full": full_bytes[-1],
        "bytes_delta": delta.bytes_sent,
        "image_bytes": image_bytes,
        "minimal_ms": round(minimal * 1000, 1),
        "frames_full": full_frames,
        "frames_delta": delta.frames_sent,
        "cylinders": CYLINDERS,
        "baudrate": BAUD,
        "max_frame_payload": station.info.max_frame_payload,
        "protocol_version": station.info.protocol_version,
        "runs": RUNS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-payload", type=int, help="station frame payload (default: its own)")
    result = asyncio.run(bench(parser.parse_args().max_payload))
    print(
        f"full write of {result['cylinders']} cylinders ({result['image_bytes']} image bytes, "
        f"{result['bytes_full']} bytes on the wire): {result['full_write_ms']} ms, "
        f"{result['minimal_ms']} ms minimum at {BAUD} baud"
    )
    print(f"one-cylinder delta: {result['bytes_delta']} bytes, {result['delta_write_ms']} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

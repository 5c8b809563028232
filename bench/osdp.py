"""Benchmark: card read → decision → LED latency of the OSDP panel driver.

A simulated reader (libosdp's PeripheralDevice) and the driver (libosdp's ControlPanel) run
in this process on a pseudo-terminal with the secure channel on; the driver holds an
allow-list of ``--entries`` credentials. Cards are presented one at a time, alternately on
and off the list, and each read is timed on one monotonic clock:

``decision``       the read reaching the driver → its commands queued for the reader
``read_to_led``    the read reaching the driver → the LED command received by the reader
                   (the target: at most 100 ms)
``present_to_led`` the card presented at the reader → the LED command received by it (adds
                   the wait for the panel's next poll, at most one poll interval of 50 ms;
                   cards come a random 0–60 ms after the previous card's feedback)

Prints one JSON object as its last line with p50, p99 and max of each in milliseconds, and
``within_target`` (p99 of ``decision`` and ``read_to_led`` at most 100 ms).

Usage: ``python bench/osdp.py [--reads N] [--entries N] [--refresh-ms MS]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Run as ``python bench/osdp.py``, this folder comes first on the module path and this file's
# name would hide the OSDP library (``import osdp``) from the driver: take the folder off.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != _HERE]

from drivers.base import AllowEntry  # noqa: E402
from drivers.osdp import OsdpReaderDriver, Scbk  # noqa: E402
from drivers.osdp.keys import store_keys  # noqa: E402
from simulators.osdp import OsdpSimulator, ReaderSpec  # noqa: E402

TARGET_MS = 100.0
ADDRESS = 101


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(0, math.ceil(p / 100 * len(ordered)) - 1)
    return ordered[rank]


def summary(name: str, values: list[float]) -> dict[str, float]:
    return {
        f"{name}_p50_ms": round(statistics.median(values), 2),
        f"{name}_p99_ms": round(percentile(values, 99), 2),
        f"{name}_max_ms": round(max(values), 2),
    }


async def _until(probe: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5.0
    while True:
        if probe():
            return
        if time.monotonic() > deadline:
            raise SystemExit("the reader or the driver stopped responding")
        await asyncio.sleep(0.0005)


async def run(reads: int, entries: int, refresh_ms: int) -> dict[str, object]:
    key = Scbk.generate()
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "keys.json"
        store_keys(key_file, {ADDRESS: key})
        async with OsdpSimulator([ReaderSpec(ADDRESS, key)], control_port=None) as sim:
            driver = OsdpReaderDriver.from_options(
                {
                    **sim.driver_options(),
                    "state_dir": str(Path(tmp) / "state"),
                    "key_file": str(key_file),
                    "refresh_ms": refresh_ms,
                    "capacity": max(entries, 1),
                }
            )
            async with driver:
                started = time.perf_counter()
                await driver.write_allow_list(
                    [AllowEntry(1_000_000 + 2 * i, 0b1) for i in range(entries)], []
                )
                write_ms = (time.perf_counter() - started) * 1000
                reader = sim.readers[ADDRESS]
                decision: list[float] = []
                read_to_led: list[float] = []
                present_to_led: list[float] = []
                granted = 0
                rng = random.Random(12)
                for i in range(reads):
                    card = 1_000_000 + i  # even: on the list; odd: not
                    reader.commands(clear=True)
                    presented = time.monotonic()
                    if not reader.present(card):
                        raise SystemExit("the reader did not take the card")

                    def led_seen() -> bool:
                        return any(c["command"] == "led" for c in reader.commands())

                    def decided(card: int = card) -> bool:
                        return bool(driver.decisions) and driver.decisions[-1].credential == card

                    await _until(led_seen)
                    await _until(decided)
                    led_at = next(
                        c["monotonic"] for c in reader.commands() if c["command"] == "led"
                    )
                    d = driver.decisions[-1]
                    # The next card comes after this one's feedback, at a random point of the
                    # panel's poll cycle (back to back, every read would wait for a full one).
                    await _until(lambda d=d: len(reader.commands()) >= len(d.commands))
                    await asyncio.sleep(rng.uniform(0.0, 0.06))
                    if d.credential != card:
                        raise SystemExit(f"decided {d.credential}, presented {card}")
                    granted += d.reason is None
                    decision.append((d.decided - d.received) * 1000)
                    read_to_led.append((led_at - d.received) * 1000)
                    present_to_led.append((led_at - presented) * 1000)
    report: dict[str, object] = {
        "reads": reads,
        "granted": granted,
        "entries": entries,
        "refresh_ms": refresh_ms,
        "allow_list_write_ms": round(write_ms, 1),
    }
    report.update(summary("decision", decision))
    report.update(summary("read_to_led", read_to_led))
    report.update(summary("present_to_led", present_to_led))
    report["target_ms"] = TARGET_MS
    report["within_target"] = (
        percentile(decision, 99) <= TARGET_MS and percentile(read_to_led, 99) <= TARGET_MS
    )
    print(
        f"{reads} reads ({granted} granted) against {entries} entries: read→LED "
        f"p50 {report['read_to_led_p50_ms']} ms, p99 {report['read_to_led_p99_ms']} ms; "
        f"card→LED p99 {report['present_to_led_p99_ms']} ms"
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--entries", type=int, default=10000)
    parser.add_argument("--refresh-ms", type=int, default=5)
    args = parser.parse_args()
    if not 1 <= args.reads <= 100_000:
        parser.error("--reads: must be in 1..100000")
    if not 0 <= args.entries <= 1_000_000:
        parser.error("--entries: must be in 0..1000000")
    if not 1 <= args.refresh_ms <= 40:
        parser.error("--refresh-ms: must be in 1..40")
    print(json.dumps(asyncio.run(run(args.reads, args.entries, args.refresh_ms))))


if __name__ == "__main__":
    main()

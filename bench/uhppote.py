"""Benchmark: full sync and revocation of the UHPPOTE driver against the simulator on loopback.

Loads a 1000-card allow-list (every third card on an office-hours schedule) into a simulated
UHPPOTE controller over UDP on 127.0.0.1 (the simulator runs in this process), then revokes
cards one at a time. Prints one JSON object as its last line:

``cards``                   cards in the full sync
``sync_ms``                 duration of the full sync (diff against an empty table, writes,
                            read-back of every record)
``sync_packets``            request packets of the full sync
``sync_writes``             records written (cards and time profiles)
``revocation_packets``      request packets of one revocation (delete, read-back, count, marker)
``revocation_p50_ms`` / ``revocation_p99_ms``
                            latency of a one-card revocation, call to verified write
``audit_packets``           packets of one steady-state ``read_checksum`` (count and a few records)

Usage: ``python bench/uhppote.py [--cards N] [--revocations N] [--transport udp|tcp]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import time

from drivers.base import AllowEntry, HardwareSchedule, ScheduleWindow
from drivers.uhppote import UhppoteDoorController
from simulators.uhppote import UhppoteController, UhppoteServer, UhppoteSimulator

SERIAL = 423187757
OFFICE = [HardwareSchedule(1, (ScheduleWindow(0b0011111, 8 * 60, 17 * 60),))]


def _entries(count: int) -> list[AllowEntry]:
    return [
        AllowEntry(10_000_000 + i, 0b0011, schedule_id=1 if i % 3 == 0 else 0) for i in range(count)
    ]


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


async def run(cards: int, revocations: int, transport: str) -> dict[str, object]:
    controller = UhppoteController(SERIAL, capacity=cards + 10, timezone="Europe/Stockholm")
    async with UhppoteSimulator(UhppoteServer([controller]), control_port=None) as sim:
        driver = UhppoteDoorController.from_options(
            {**sim.driver_options(), "bind": "127.0.0.1", "transport": transport}
        )
        async with driver:
            entries = _entries(cards)
            started = time.perf_counter()
            full = await driver.write_allow_list(entries, OFFICE)
            sync_ms = (time.perf_counter() - started) * 1000
            latencies: list[float] = []
            packets: list[int] = []
            for i in range(min(revocations, cards)):
                entries = entries[1:] if i % 2 == 0 else entries[:-1]
                started = time.perf_counter()
                result = await driver.write_allow_list(entries, OFFICE)
                latencies.append((time.perf_counter() - started) * 1000)
                packets.append(result.requests)
            before = driver.requests
            await driver.read_checksum()
            audit = driver.requests - before
    return {
        "cards": cards,
        "transport": transport,
        "sync_ms": round(sync_ms, 1),
        "sync_packets": full.requests,
        "sync_writes": full.registers_written,
        "revocation_packets": max(packets) if packets else 0,
        "revocation_p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "revocation_p99_ms": round(_p(latencies, 0.99), 2) if latencies else None,
        "audit_packets": audit,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--revocations", type=int, default=50)
    parser.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.cards, args.revocations, args.transport))))


if __name__ == "__main__":
    main()

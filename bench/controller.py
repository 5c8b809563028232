"""Benchmark: allow-list sync and revocation latency of the Modbus door controller driver.

Syncs a 1000-credential allow-list to a simulated controller over Modbus TCP on loopback
(the simulator runs in this process), then revokes credentials one at a time and times each
revocation from the call to the verified commit. Prints one JSON object as its last line:

``registers``            holding registers written by the full sync
``requests``             Modbus requests of the full sync (target: ceil(registers/123) + 5)
``sync_ms``              duration of the full sync
``revocation_p50_ms``    median revocation latency
``revocation_p99_ms``    99th percentile (target: at most 250 ms)

The revocation measurement is :func:`measure_revocations`, which times any ``revoke``
coroutine. Here the revoker writes the list without the credential through the driver
(:func:`driver_revoker`); a revoker that stores a revocation fact and waits until the sync
engine has confirmed the controller holds it measures the whole path with the same code.

Usage: ``python bench/controller.py [--entries N] [--revocations N] [--transport tcp|rtu]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from drivers.base import AllowEntry, HardwareSchedule, ScheduleWindow
from drivers.modbusdoor import ModbusDoorController
from drivers.modbusdoor import registers as rm
from simulators.controller import ControllerMemory, ControllerServer, ControllerSimulator

Revoke = Callable[[int], Awaitable[None]]
"""Revokes one credential; returns once the controller verifiably no longer admits it."""

SCHEDULES = [
    HardwareSchedule(1, (ScheduleWindow(0b0011111, 6 * 60, 19 * 60),)),
    HardwareSchedule(2, (ScheduleWindow(0x7F, 0, 1440),)),
]


def allow_list(count: int) -> list[AllowEntry]:
    """``count`` credentials across four doors, some time-boxed, some on a schedule."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    entries = []
    for i in range(count):
        entries.append(
            AllowEntry(
                credential=100_000 + 7 * i,
                doors_mask=(0b0001, 0b0011, 0b0111, 0b1111)[i % 4],
                valid_from=start if i % 3 == 0 else None,
                valid_until=start + timedelta(days=365) if i % 5 == 0 else None,
                schedule_id=(0, 1, 2)[i % 3],
            )
        )
    return entries


def driver_revoker(
    driver: ModbusDoorController, entries: list[AllowEntry], schedules: list[HardwareSchedule]
) -> Revoke:
    """Revoke by writing the current list minus the credential through the driver."""
    current = list(entries)

    async def revoke(credential: int) -> None:
        current[:] = [e for e in current if e.credential != credential]
        await driver.write_allow_list(current, schedules)

    return revoke


async def measure_revocations(revoke: Revoke, credentials: Sequence[int]) -> list[float]:
    """Milliseconds each ``revoke(credential)`` took, in order."""
    latencies = []
    for credential in credentials:
        started = time.perf_counter()
        await revoke(credential)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def percentile(values: Sequence[float], pct: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


async def run(entries_count: int, revocations: int, transport: str) -> dict[str, object]:
    memory = ControllerMemory(controller_id="bench-ctl", doors=4, capacity=2000)
    server = ControllerServer(memory, transport="tcp" if transport == "tcp" else "rtu")
    simulator = ControllerSimulator(server, control_port=None)
    async with simulator:
        driver = ModbusDoorController.from_options(
            {"device_id": "bench", **simulator.driver_options(), "timeout_s": 2.0}
        )
        async with driver:
            entries = allow_list(entries_count)
            started = time.perf_counter()
            result = await driver.write_allow_list(entries, SCHEDULES)
            sync_ms = (time.perf_counter() - started) * 1000
            print(
                f"full sync: {result.entries} entries, {result.registers_written} registers, "
                f"{result.requests} requests, {sync_ms:.1f} ms"
            )
            victims = [e.credential for e in entries[:: max(1, len(entries) // revocations)]]
            victims = victims[:revocations]
            requests_before = driver.requests
            latencies = await measure_revocations(
                driver_revoker(driver, entries, SCHEDULES), victims
            )
            per_revocation = (driver.requests - requests_before) / len(victims)
            if await driver.read_checksum() != memory.active_checksum:
                raise SystemExit("the controller does not hold the list the driver verified")
            if any(e.credential in set(victims) for e in memory.active_entries):
                raise SystemExit("a revoked credential is still on the controller")
            print(
                f"revocations: {len(victims)}, {per_revocation:.1f} requests each, "
                f"p50 {percentile(latencies, 50):.2f} ms, p99 {percentile(latencies, 99):.2f} ms, "
                f"max {max(latencies):.2f} ms"
            )
    return {
        "benchmark": "controller",
        "transport": transport,
        "entries": entries_count,
        "registers": result.registers_written,
        "requests": result.requests,
        "requests_target": math.ceil(result.registers_written / rm.MAX_WRITE_REGISTERS) + 5,
        "sync_ms": round(sync_ms, 2),
        "revocations": len(victims),
        "revocation_requests": per_revocation,
        "revocation_p50_ms": round(percentile(latencies, 50), 2),
        "revocation_p99_ms": round(percentile(latencies, 99), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--revocations", type=int, default=60)
    parser.add_argument("--transport", choices=("tcp", "rtu"), default="tcp")
    args = parser.parse_args()
    if not 1 <= args.entries <= 2000:
        parser.error("--entries: must be in 1..2000")
    if not 1 <= args.revocations <= args.entries:
        parser.error("--revocations: must be in 1..--entries")
    report = asyncio.run(run(args.entries, args.revocations, args.transport))
    print(json.dumps(report))


if __name__ == "__main__":
    main()

"""Benchmark: allow-list sync and revocation latency of the Modbus door controller driver.

Syncs a 1000-credential allow-list to a simulated controller over Modbus TCP on loopback
(the simulator runs in this process), then revokes credentials one at a time and times each
revocation from the call to the verified commit. Prints one JSON object as its last line:

``registers``            holding registers written by the full sync
``requests``             Modbus requests of the full sync (target: ceil(registers/123) + 5)
``sync_ms``              duration of the full sync
``revocation_p50_ms``    median revocation latency
``revocation_p99_ms``    99th percentile (target: at most 250 ms)
``gateway_revocation_p50_ms`` / ``gateway_revocation_p99_ms``
                         the same, measured from the stored revocation fact (an ID06 block)
                         through the core, the planner and the sync engine to the verified
                         commit on the controller (target p99: at most 250 ms)

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


class _ConfirmationSink:
    """Sync sink that wakes the waiting revoker when a revocation is confirmed."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: dict[str, asyncio.Event] = {}

    def availability(self, session: object, device_id: str, online: bool, reason: str) -> None:
        pass

    def credential_state(self, session: object, core: object, number: str) -> None:
        pass

    def event(self, session: object, kind: str, body: dict[str, object]) -> None:
        if kind == "revocation_confirmed":
            ev = self.waiting.get(str(body["credential"]))
            if ev is not None:
                self.loop.call_soon_threadsafe(ev.set)


def _site_facts(count: int) -> list[object]:
    """``count`` employee tags with HR approval on door 1 and 2 of controller ``bench-ctl``."""
    from gateway.domain import (
        AccessApplication,
        ApplicationEntry,
        ApplicationStatus,
        Assignment,
        Credential,
        CredentialKind,
        CredentialState,
        DoorRef,
        Employment,
        Id06Card,
        KeyGrantAgreement,
        Organisation,
        Person,
        Space,
    )
    from gateway.domain.identifiers import org_number_with_check_digit

    now = datetime.now(UTC)
    today = now.date()
    org = org_number_with_check_digit("556677880")
    facts: list[object] = [
        Organisation(org_number=org, name="Bench AB"),
        KeyGrantAgreement(
            id="ag",
            org_number=org,
            signed_on=today - timedelta(days=10),
            valid_from=today - timedelta(days=10),
        ),
        Space(
            id="office",
            name="Office",
            doors=(
                DoorRef(controller_id="bench-ctl", door=1),
                DoorRef(controller_id="bench-ctl", door=2),
            ),
        ),
    ]
    for i in range(count):
        facts.append(Person(id=f"p{i}", first_name="P", last_name=f"L{i}"))
        facts.append(
            Employment(
                id=f"e{i}",
                person_id=f"p{i}",
                org_number=org,
                id06=Id06Card(card_number=f"BENCH{i:06d}", valid_until=today + timedelta(days=365)),
            )
        )
        facts.append(
            Credential(
                number=str(1_000_000 + i),
                kind=CredentialKind.TAG,
                state=CredentialState.IN_SERVICE,
                employment_id=f"e{i}",
                hr_approved_at=now,
            )
        )
    for a in range(math.ceil(count / 50)):
        facts.append(
            Assignment(
                id=f"a{a}",
                name="A",
                main_contractor=org,
                project_manager="PM",
                starts_on=today - timedelta(days=5),
                ends_on=today + timedelta(days=300),
            )
        )
        facts.append(
            AccessApplication(
                assignment_id=f"a{a}",
                revision=1,
                status=ApplicationStatus.APPROVED,
                submitted_at=now - timedelta(days=2),
                decided_at=now - timedelta(days=1),
                entries=tuple(
                    ApplicationEntry(
                        employment_id=f"e{i}",
                        space_ids=("office",),
                        valid_from=today - timedelta(days=1),
                        valid_until=today + timedelta(days=200),
                    )
                    for i in range(50 * a, min(count, 50 * (a + 1)))
                ),
            )
        )
    return facts


async def run_through_gateway(entries_count: int, revocations: int) -> dict[str, object]:
    """Revocation latency from the stored ID06 block to the controller's verified commit,
    through the core, the planner and the sync engine's controller worker."""
    import tempfile
    from pathlib import Path

    from gateway.commands import model as cmd
    from gateway.config import Settings
    from gateway.core import Core, Submission
    from gateway.runtime import CommitNotifier, Gateway
    from gateway.store import fact_repository as fact_store
    from gateway.store import migrate
    from gateway.store.database import Database, default_sqlite_url
    from gateway.sync.engine import SyncService
    from gateway.sync.planner import load_exposures, plan

    memory = ControllerMemory(controller_id="bench-ctl", doors=4, capacity=2000)
    simulator = ControllerSimulator(ControllerServer(memory, transport="tcp"), control_port=None)
    with tempfile.TemporaryDirectory() as tmp:
        url = default_sqlite_url(Path(tmp) / "bench.db")
        migrate.upgrade(url)
        db = Database(url)
        with db.session() as s:
            fact_store.put_many(s, _site_facts(entries_count))  # type: ignore[arg-type]
        async with simulator:
            settings = Settings.model_validate(
                {
                    "database": {"url": url},
                    "mqtt": {"enabled": False},
                    "sync": {"tick_s": 1.0},
                    "controllers": [
                        {
                            "id": "bench-ctl",
                            "driver": "modbus-door",
                            "options": simulator.driver_options(),
                        }
                    ],
                }
            )
            notifier = CommitNotifier()
            core = Core(
                db,
                settings.rules_config(),
                listeners=[notifier, plan],
                loaders=[load_exposures],
            )
            sink = _ConfirmationSink(asyncio.get_running_loop())
            sync = SyncService(settings, sink)
            gateway = Gateway(settings, core, notifier=notifier, services=[sync])
            await gateway.start()
            try:
                worker = sync.controllers["bench-ctl"]
                while worker.writes < 1:  # noqa: ASYNC110 - the worker counts, it has no event
                    await asyncio.sleep(0.01)

                async def revoke(credential: int) -> None:
                    number = str(credential)
                    done = sink.waiting[number] = asyncio.Event()
                    block = cmd.BlockId06(card_number=f"BENCH{credential - 1_000_000:06d}")
                    outcome = await gateway.call(core.submit, Submission(block, "bench"))
                    if not outcome.ok:
                        raise SystemExit(f"revocation refused: {outcome.error}")
                    await asyncio.wait_for(done.wait(), 10)

                step = max(1, entries_count // revocations)
                victims = [1_000_000 + i for i in range(0, entries_count, step)][:revocations]
                latencies = await measure_revocations(revoke, victims)
            finally:
                await gateway.stop()
        if any(e.credential in set(victims) for e in memory.active_entries):
            raise SystemExit("a revoked credential is still on the controller")
    print(
        f"through the gateway: {len(latencies)} revocations, "
        f"p50 {percentile(latencies, 50):.2f} ms, p99 {percentile(latencies, 99):.2f} ms"
    )
    return {
        "gateway_revocation_p50_ms": round(percentile(latencies, 50), 2),
        "gateway_revocation_p99_ms": round(percentile(latencies, 99), 2),
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
    report.update(asyncio.run(run_through_gateway(args.entries, args.revocations)))
    print(json.dumps(report))


if __name__ == "__main__":
    main()

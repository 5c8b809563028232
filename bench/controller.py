"""Benchmark: allow-list sync and revocation latency of every door-controller driver.

For each driver (``modbus``: the Modbus controller over TCP or RTU; ``uhppote``: a UHPPOTE
board over UDP; ``osdp``: OSDP readers with lockgate as their panel), against its simulator
in this process on loopback or a pseudo-terminal:

* a full sync of a 1000-credential allow-list through the driver, then one-credential
  revocations, each timed from the call to the verified write;
* the same revocations through the gateway: from the stored revocation fact (an ID06 block)
  through the core, the planner and the sync engine's controller worker to the confirmed
  write on the device.

Prints a line per measurement and one JSON object as its last line, ``drivers`` holding per
driver:

``entries``, ``sync_ms``     credentials of the full sync and its duration
``requests``                 requests (Modbus requests, UHPPOTE packets) of the full sync;
                             OSDP: 0 (the list is lockgate's own file, nothing goes on the bus)
``writes``                   registers (Modbus) or records (UHPPOTE) written; OSDP: 0
``revocation_requests``      requests of one revocation through the driver
``revocation_p50_ms`` / ``revocation_p99_ms``
                             one-credential revocation through the driver (Modbus target p99:
                             at most 250 ms)
``gateway_revocation_p50_ms`` / ``gateway_revocation_p99_ms`` / ``gateway_revocation_requests``
                             the same through the gateway, until the confirmation is committed
                             (target p99: at most 250 ms); requests of the write

The revocation measurement is :func:`measure_revocations`, which times any ``revoke``
coroutine.

Usage: ``python bench/controller.py [--driver all|modbus|uhppote|osdp] [--entries N]
[--revocations N] [--transport tcp|rtu]`` (``--transport``: the Modbus one)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Run as ``python bench/controller.py``, this folder comes first on the module path and
# bench/osdp.py would hide the OSDP library (``import osdp``) from the driver: take it off.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != _HERE]

from drivers.base import AllowEntry, DoorController, HardwareSchedule, ScheduleWindow  # noqa: E402
from drivers.modbusdoor import registers as rm  # noqa: E402
from drivers.osdp import Scbk  # noqa: E402
from drivers.osdp.keys import store_keys  # noqa: E402
from drivers.registry import load_driver_class  # noqa: E402
from simulators.controller import (  # noqa: E402
    ControllerMemory,
    ControllerServer,
    ControllerSimulator,
)
from simulators.osdp import OsdpSimulator, ReaderSpec  # noqa: E402
from simulators.uhppote import UhppoteController, UhppoteServer, UhppoteSimulator  # noqa: E402

DRIVERS = ("modbus", "uhppote", "osdp")
ENTRY_POINTS = {"modbus": "modbus-door", "uhppote": "uhppote-door", "osdp": "osdp-reader"}
CONTROLLER_ID = "bench-ctl"

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
    driver: DoorController, entries: list[AllowEntry], schedules: list[HardwareSchedule]
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


@dataclass
class Rig:
    """A simulated device of one kind: the gateway's options for its driver and whether it
    still admits a credential (asked of the device, not of the driver)."""

    kind: str
    options: dict[str, Any]
    holds: Callable[[int], Awaitable[bool]]
    extra: dict[str, Any] = field(default_factory=dict)

    def driver(self) -> DoorController:
        cls = load_driver_class(ENTRY_POINTS[self.kind])
        driver = cls.from_options({"device_id": "bench", **self.options})
        assert isinstance(driver, DoorController)
        return driver


@contextlib.asynccontextmanager
async def rig(kind: str, transport: str, folder: Path) -> AsyncIterator[Rig]:
    """The simulator of a ``kind`` of device with four doors, running until the exit."""
    if kind == "modbus":
        memory = ControllerMemory(controller_id=CONTROLLER_ID, doors=4, capacity=2000)
        server = ControllerServer(memory, transport="tcp" if transport == "tcp" else "rtu")
        async with ControllerSimulator(server, control_port=None) as modbus:

            async def modbus_holds(credential: int) -> bool:
                return any(e.credential == credential for e in memory.active_entries)

            yield Rig(kind, {**modbus.driver_options(), "timeout_s": 2.0}, modbus_holds)
        return
    if kind == "uhppote":
        board = UhppoteController(423187757, doors=4, capacity=2010, timezone="Europe/Stockholm")
        async with UhppoteSimulator(UhppoteServer([board]), control_port=None) as uhppote:

            async def uhppote_holds(credential: int) -> bool:
                return board.card(credential) is not None

            options = {**uhppote.driver_options(), "bind": "127.0.0.1", "listen": "127.0.0.1:0"}
            yield Rig(kind, options, uhppote_holds)
        return
    keys = {101 + i: Scbk.generate() for i in range(4)}
    key_file = folder / f"keys-{time.monotonic_ns()}.json"
    store_keys(key_file, keys)
    specs = [ReaderSpec(a, k, serial_number=a) for a, k in keys.items()]
    async with OsdpSimulator(specs, control_port=None, key_file=key_file) as bus:

        async def osdp_holds(credential: int) -> bool:
            """A card at door 1's reader: held when the panel pulses the output."""
            reader = bus.readers[101]
            reader.commands(clear=True)
            reader.present(credential)
            async with asyncio.timeout(10):
                while True:
                    for c in reader.commands():
                        if c["command"] == "output":
                            return True
                        if c.get("on_color_name") == "red":
                            return False
                    await asyncio.sleep(0.005)

        state = folder / f"state-{time.monotonic_ns()}"
        options = {
            **bus.driver_options(),
            "key_file": str(key_file),
            "state_dir": str(state),
            "retry_s": 0.5,
        }
        yield Rig(kind, options, osdp_holds)


async def run(
    kind: str, entries_count: int, revocations: int, transport: str, folder: Path
) -> dict[str, object]:
    """The full sync and the revocations through the driver alone."""
    async with rig(kind, transport, folder) as device:
        driver = device.driver()
        async with driver:
            entries = allow_list(entries_count)
            started = time.perf_counter()
            result = await driver.write_allow_list(entries, SCHEDULES)
            sync_ms = (time.perf_counter() - started) * 1000
            print(
                f"{kind}: full sync: {result.entries} entries, {result.registers_written} "
                f"written, {result.requests} requests, {sync_ms:.1f} ms"
            )
            victims = [e.credential for e in entries[:: max(1, len(entries) // revocations)]]
            victims = victims[:revocations]
            requests: list[int] = []
            current = list(entries)

            async def revoke(credential: int) -> None:
                current[:] = [e for e in current if e.credential != credential]
                requests.append((await driver.write_allow_list(current, SCHEDULES)).requests)

            latencies = await measure_revocations(revoke, victims)
            if await driver.read_checksum() != (await driver.read_checksum()):
                raise SystemExit(f"{kind}: the checksum is not stable")
            for credential in victims[:3]:  # (an OSDP panel decides only while open)
                if await device.holds(credential):
                    raise SystemExit(f"{kind}: revoked credential {credential} still opens")
        print(
            f"{kind}: revocations: {len(victims)}, {statistics.mean(requests):.1f} requests each, "
            f"p50 {percentile(latencies, 50):.2f} ms, p99 {percentile(latencies, 99):.2f} ms, "
            f"max {max(latencies):.2f} ms"
        )
    report: dict[str, object] = {
        "entries": entries_count,
        "sync_ms": round(sync_ms, 2),
        "requests": result.requests,
        "writes": result.registers_written,
        "revocations": len(victims),
        "revocation_requests": round(statistics.mean(requests), 1),
        "revocation_p50_ms": round(percentile(latencies, 50), 2),
        "revocation_p99_ms": round(percentile(latencies, 99), 2),
    }
    if kind == "modbus":
        report["transport"] = transport
        report["requests_target"] = math.ceil(result.registers_written / rm.MAX_WRITE_REGISTERS) + 5
    return report


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


async def run_through_gateway(
    kind: str, entries_count: int, revocations: int, transport: str, folder: Path
) -> dict[str, object]:
    """Revocation latency from the stored ID06 block to the controller's verified commit,
    through the core, the planner and the sync engine's controller worker."""
    from gateway.commands import model as cmd
    from gateway.config import Settings
    from gateway.core import Core, Submission
    from gateway.runtime import CommitNotifier, Gateway
    from gateway.store import fact_repository as fact_store
    from gateway.store import migrate
    from gateway.store.database import Database, default_sqlite_url
    from gateway.sync.engine import SyncService
    from gateway.sync.planner import load_exposures, plan

    with tempfile.TemporaryDirectory() as tmp:
        url = default_sqlite_url(Path(tmp) / "bench.db")
        migrate.upgrade(url)
        db = Database(url)
        with db.session() as s:
            fact_store.put_many(s, _site_facts(entries_count))  # type: ignore[arg-type]
        async with rig(kind, transport, folder) as device:
            settings = Settings.model_validate(
                {
                    "database": {"url": url},
                    "mqtt": {"enabled": False},
                    "sync": {"tick_s": 1.0, "device_timeout_s": 60.0},
                    "controllers": [
                        {
                            "id": CONTROLLER_ID,
                            "driver": ENTRY_POINTS[kind],
                            "options": device.options,
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
            requests: list[int] = []
            try:
                worker = sync.controllers[CONTROLLER_ID]
                while worker.writes < 1:  # noqa: ASYNC110 - the worker counts, it has no event
                    await asyncio.sleep(0.01)

                async def revoke(credential: int) -> None:
                    number = str(credential)
                    done = sink.waiting[number] = asyncio.Event()
                    block = cmd.BlockId06(card_number=f"BENCH{credential - 1_000_000:06d}")
                    outcome = await gateway.call(core.submit, Submission(block, "bench"))
                    if not outcome.ok:
                        raise SystemExit(f"revocation refused: {outcome.error}")
                    writes = worker.writes
                    await asyncio.wait_for(done.wait(), 10)
                    # The confirmation is reported inside the write's transaction; the worker
                    # keeps the write's result once that committed.
                    async with asyncio.timeout(10):
                        while worker.writes == writes:  # noqa: ASYNC110
                            await asyncio.sleep(0.001)
                    if worker.last_write is not None:
                        requests.append(worker.last_write.requests)

                step = max(1, entries_count // revocations)
                victims = [1_000_000 + i for i in range(0, entries_count, step)][:revocations]
                latencies = await measure_revocations(revoke, victims)
                for credential in victims[:3]:
                    if await device.holds(credential):
                        raise SystemExit(f"{kind}: revoked credential {credential} still opens")
            finally:
                await gateway.stop()
    print(
        f"{kind}: through the gateway: {len(latencies)} revocations, "
        f"p50 {percentile(latencies, 50):.2f} ms, p99 {percentile(latencies, 99):.2f} ms"
    )
    return {
        "gateway_revocation_p50_ms": round(percentile(latencies, 50), 2),
        "gateway_revocation_p99_ms": round(percentile(latencies, 99), 2),
        "gateway_revocation_requests": round(statistics.mean(requests), 1) if requests else None,
    }


async def run_all(
    kinds: Sequence[str], entries: int, revocations: int, transport: str
) -> dict[str, object]:
    report: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for kind in kinds:
            measured = await run(kind, entries, revocations, transport, folder)
            measured.update(
                await run_through_gateway(kind, entries, revocations, transport, folder)
            )
            report[kind] = measured
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driver", choices=("all", *DRIVERS), default="all")
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--revocations", type=int, default=60)
    parser.add_argument("--transport", choices=("tcp", "rtu"), default="tcp")
    args = parser.parse_args()
    if not 1 <= args.entries <= 2000:
        parser.error("--entries: must be in 1..2000")
    if not 1 <= args.revocations <= args.entries:
        parser.error("--revocations: must be in 1..--entries")
    kinds = DRIVERS if args.driver == "all" else (args.driver,)
    drivers = asyncio.run(run_all(kinds, args.entries, args.revocations, args.transport))
    print(json.dumps({"benchmark": "controller", "entries": args.entries, "drivers": drivers}))


if __name__ == "__main__":
    main()

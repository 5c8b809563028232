"""SerialKeyStation against the simulated station over a real pseudo-terminal."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tty
from datetime import UTC, datetime
from typing import Any

import pytest

from drivers.base import (
    AccessEntry,
    AuditOutcome,
    DeviceTimeout,
    DeviceUnavailable,
    KeyAuditRecord,
    KeyEvent,
    KeyEventKind,
    KeyRemoved,
    NoKeyInserted,
    ProtocolError,
    StationCapability,
    StationMounting,
    VerifyMismatch,
    WriteProgress,
)
from drivers.registry import load_key_station
from drivers.serialstation import SerialKeyStation, canonical, encode_image
from drivers.serialstation.codes import Capability, Mounting
from simulators.station import (
    FaultPlan,
    SimWorld,
    StationConfig,
    StationSimulator,
    StreamPort,
    VirtualKey,
)

from .conftest import SERIAL, T0, T1, make_image


async def next_event(station: SerialKeyStation, within: float = 3.0) -> KeyEvent:
    return await asyncio.wait_for(anext(aiter(station.events())), within)


async def insert(sim: StationSimulator, station: SerialKeyStation, serial: str = SERIAL) -> None:
    sim.device.insert(serial)
    event = await next_event(station)
    assert (event.kind, event.serial) == (KeyEventKind.INSERTED, serial)


# ---------------------------------------------------------------------------- options


def test_from_options_validates_each_option() -> None:
    driver = SerialKeyStation.from_options({"port": "/dev/ttyUSB0", "device_id": "d"})
    assert (driver.baudrate, driver.retries, driver.timeout_s) == (115200, 3, 1.0)
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "port"),
        ({"port": ""}, "port"),
        ({"port": "x", "baudrate": "fast"}, "baudrate"),
        ({"port": "x", "baudrate": 10}, "baudrate"),
        ({"port": "x", "timeout_s": 0}, "timeout_s"),
        ({"port": "x", "timeout_s": float("nan")}, "timeout_s"),
        ({"port": "x", "retries": -1}, "retries"),
        ({"port": "x", "retries": True}, "retries"),
        ({"port": "x", "parity": "E"}, "parity"),
    ]
    for options, field in cases:
        with pytest.raises(ValueError, match=rf"^{field}:"):
            SerialKeyStation.from_options(options)


def test_driver_is_registered_as_an_entry_point() -> None:
    from drivers.base import DeviceConfig

    station = load_key_station(
        DeviceConfig("desk-9", "serial-station", {"port": "/dev/null", "retries": 1})
    )
    assert isinstance(station, SerialKeyStation)
    assert station.device_id == "desk-9"


# ---------------------------------------------------------------------------- life cycle


async def test_hello_reports_the_station(station: SerialKeyStation) -> None:
    info = station.info
    assert info.station_id == "desk-1"
    assert info.protocol_version == 2
    assert info.mounting is StationMounting.DESK
    assert info.capabilities == set(StationCapability)
    assert info.max_access_entries == 2000
    assert info.max_frame_payload == 256
    assert info.firmware == "sim-1.0"


async def test_open_with_a_key_inside_reports_it_first(sim: StationSimulator) -> None:
    sim.device.insert(SERIAL)
    async with SerialKeyStation(port=sim.pty_path, timeout_s=0.3) as station:
        event = await next_event(station)
        assert (event.kind, event.serial) == (KeyEventKind.INSERTED, SERIAL)
        assert event.at.tzinfo is not None


async def test_insert_and_remove_events_in_order(
    sim: StationSimulator, station: SerialKeyStation
) -> None:
    sim.device.insert(SERIAL)
    sim.device.remove()
    sim.device.insert("100000002")
    events = station.events()
    got = [await asyncio.wait_for(anext(events), 3) for _ in range(3)]
    assert [(e.kind, e.serial) for e in got] == [
        (KeyEventKind.INSERTED, SERIAL),
        (KeyEventKind.REMOVED, SERIAL),
        (KeyEventKind.INSERTED, "100000002"),
    ]


async def test_events_end_when_closed_and_nothing_is_left_running(sim: StationSimulator) -> None:
    station = SerialKeyStation(port=sim.pty_path, timeout_s=0.3)
    before = asyncio.all_tasks()
    await station.open()
    consumer = asyncio.create_task(anext(aiter(station.events()), None), name="consumer")
    await asyncio.sleep(0.05)
    await station.close()
    await station.close()
    assert await asyncio.wait_for(consumer, 2) is None
    assert asyncio.all_tasks() - before == set()
    with pytest.raises(DeviceUnavailable):
        await station.read_key()


async def test_open_fails_cleanly_when_the_port_does_not_exist(tmp_path: os.PathLike[str]) -> None:
    station = SerialKeyStation(port=f"{tmp_path}/missing", timeout_s=0.2)
    with pytest.raises(DeviceUnavailable, match="missing"):
        await station.open()
    with pytest.raises(DeviceUnavailable):
        _ = station.info


async def test_open_times_out_against_a_silent_line() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        station = SerialKeyStation(port=os.ttyname(slave), timeout_s=0.1, retries=1)
        with pytest.raises(DeviceTimeout, match="HELLO"):
            await station.open()
    finally:
        os.close(master)
        os.close(slave)


async def test_open_refuses_a_station_speaking_another_version(
    sim: StationSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drivers.serialstation import driver as driver_module

    monkeypatch.setattr(driver_module, "PROTOCOL_VERSION", 3)
    monkeypatch.setattr(driver_module, "PROTOCOL_VERSIONS", (3,))
    station = SerialKeyStation(port=sim.pty_path, timeout_s=0.2)
    with pytest.raises(ProtocolError) as info:
        await station.open()
    assert info.value.field == "version"
    assert sim.device.stats.errors_sent == 1  # BAD_VERSION


async def test_a_version_1_station_gets_version_1_and_format_1_deltas(
    world: SimWorld, faults: FaultPlan
) -> None:
    config = StationConfig(station_id="old-1", protocol_version=1)
    async with (
        StationSimulator(world=world, config=config, faults=faults, control_port=None) as sim,
        SerialKeyStation(port=sim.pty_path, timeout_s=0.3) as station,
    ):
        assert station.info.protocol_version == 1
        await insert(sim, station)
        image = make_image(1, entries=200)
        full = await station.write_key(image)
        changed = dataclasses.replace(
            image, revision=f"{2:016x}", access=(*image.access, AccessEntry(999_999))
        )
        delta = await station.write_key(changed)
        assert delta.delta and not full.delta
        assert sim.world.registry.get(SERIAL).image == canonical(changed)
        # format 1: the whole 22-byte header, schedules unchanged (1), five section
        # counts, the added entry (12)
        assert delta.bytes_sent == 25 + 16 + (22 + 1 + 5 + 12) + 16 + 12
        assert sim.device.stats.errors_sent == 1  # HELLO 2 refused, HELLO 1 accepted


async def test_a_version_2_delta_is_compact(
    sim: StationSimulator, station: SerialKeyStation
) -> None:
    await insert(sim, station)
    image = make_image(1, entries=200)
    await station.write_key(image)
    changed = dataclasses.replace(
        image, revision=f"{2:016x}", access=(*image.access, AccessEntry(999_999))
    )
    delta = await station.write_key(changed)
    assert delta.delta
    # WRITE_BEGIN 25, WRITE_CHUNK 16 + (format 1, mask 2, revision 8, add 1 + 12),
    # WRITE_COMMIT 16, KEY_INFO 12
    assert delta.bytes_sent == 25 + 16 + 24 + 16 + 12
    assert sim.world.registry.get(SERIAL).image == canonical(changed)


# ---------------------------------------------------------------------------- read / write


async def test_read_of_a_blank_key(sim: StationSimulator, station: SerialKeyStation) -> None:
    await insert(sim, station)
    image = await station.read_key()
    assert image.serial == SERIAL
    assert not image.enabled
    assert image.access == ()


async def test_key_operations_without_a_key(station: SerialKeyStation) -> None:
    with pytest.raises(NoKeyInserted):
        await station.read_key()
    with pytest.raises(NoKeyInserted):
        await station.write_key(make_image())
    with pytest.raises(NoKeyInserted):
        await station.read_audit()


async def test_full_write_is_verified_and_read_back(
    sim: StationSimulator, station: SerialKeyStation
) -> None:
    await insert(sim, station)
    image = make_image(1, entries=300)
    progress: list[WriteProgress] = []
    result = await station.write_key(image, progress=progress.append)
    assert result.revision == image.revision
    assert not result.delta
    total = len(encode_image(image))
    assert progress[-1] == WriteProgress(total, total)
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert len(progress) == -(-total // (256 - 4))
    assert result.bytes_sent > total
    assert await station.read_key() == canonical(image)
    assert sim.world.registry.get(SERIAL).image == canonical(image)


async def test_second_write_is_a_compact_delta(
    sim: StationSimulator, station: SerialKeyStation
) -> None:
    await insert(sim, station)
    image = make_image(1, entries=500)
    full = await station.write_key(image)
    changed = dataclasses.replace(
        image, revision=f"{2:016x}", access=(*image.access, AccessEntry(999_999, T0, T1))
    )
    progress: list[WriteProgress] = []
    delta = await station.write_key(changed, progress=progress.append)
    assert delta.delta
    assert delta.bytes_sent / full.bytes_sent <= 0.05
    assert progress
    assert progress[-1].done == progress[-1].total
    assert sim.world.registry.get(SERIAL).image == canonical(changed)
    assert await station.read_key() == canonical(changed)


async def test_delta_uses_the_image_read_from_the_key(
    sim: StationSimulator, station: SerialKeyStation
) -> None:
    key = sim.world.registry.get(SERIAL)
    key.store(encode_image(make_image(5, entries=100)))
    await insert(sim, station)
    base = await station.read_key()
    target = dataclasses.replace(base, revision=f"{6:016x}", access=base.access[1:])
    result = await station.write_key(target)
    assert result.delta
    assert key.image == canonical(target)


async def test_stale_delta_base_falls_back_to_a_full_write(
    sim: StationSimulator, station: SerialKeyStation
) -> None:
    await insert(sim, station)
    await station.write_key(make_image(1))
    key = sim.world.registry.get(SERIAL)
    key.store(encode_image(make_image(9, entries=3)))  # changed behind the driver's back
    target = make_image(2)
    result = await station.write_key(target)
    assert not result.delta
    assert key.image == canonical(target)


async def test_image_for_another_key_is_refused(
    sim: StationSimulator, station: SerialKeyStation
) -> None:
    await insert(sim, station)
    with pytest.raises(KeyRemoved, match="100000002"):
        await station.write_key(make_image(serial="100000002"))


async def test_images_the_station_cannot_hold_are_refused_before_sending(
    world: SimWorld, faults: FaultPlan
) -> None:
    config = StationConfig(
        station_id="basic",
        capabilities=Capability.AUDIT,
        max_access_entries=10,
        mounting=Mounting.WALL,
    )
    async with (
        StationSimulator(world=world, config=config, faults=faults, control_port=None) as sim,
        SerialKeyStation(port=sim.pty_path, timeout_s=0.3) as station,
    ):
        assert station.info.mounting is StationMounting.WALL
        assert station.info.capabilities == {StationCapability.AUDIT}
        await insert(sim, station)
        with pytest.raises(ValueError, match=r"^blacklists:"):
            await station.write_key(make_image(entries=5, revalidate_by=None))
        with pytest.raises(ValueError, match=r"^revalidate_by:"):
            await station.write_key(make_image(entries=5, blacklists=()))
        with pytest.raises(ValueError, match=r"^access:"):
            await station.write_key(make_image(entries=11, blacklists=(), revalidate_by=None))
        image = make_image(entries=10, blacklists=(), revalidate_by=None)
        first = await station.write_key(image)
        second = await station.write_key(dataclasses.replace(image, revision=f"{9:016x}"))
        assert not first.delta  # no delta capability
        assert not second.delta


async def test_verify_mismatch_when_the_key_does_not_hold_what_was_written(
    sim: StationSimulator, station: SerialKeyStation, monkeypatch: pytest.MonkeyPatch
) -> None:
    await insert(sim, station)
    original = VirtualKey.store

    def faulty_store(self: VirtualKey, encoded: bytes, image: object = None) -> None:
        original(self, encode_image(make_image(77, entries=1)))

    monkeypatch.setattr(VirtualKey, "store", faulty_store)
    with pytest.raises(VerifyMismatch, match="revision"):
        await station.write_key(make_image(1))


# ---------------------------------------------------------------------------- key pulled


@pytest.mark.parametrize("after_chunks", [0, 3, 10_000])
async def test_key_pulled_mid_write_keeps_its_old_image(
    sim: StationSimulator, station: SerialKeyStation, after_chunks: int
) -> None:
    await insert(sim, station)
    key = sim.world.registry.get(SERIAL)
    old = key.image
    sim.faults.set("pull_key", after_chunks=after_chunks)
    with pytest.raises(KeyRemoved):
        await station.write_key(make_image(1, entries=200))
    assert key.image == old
    event = await next_event(station)
    assert (event.kind, event.serial) == (KeyEventKind.REMOVED, SERIAL)
    with pytest.raises(NoKeyInserted):
        await station.read_key()
    await insert(sim, station)
    assert await station.read_key() == old


# ---------------------------------------------------------------------------- line faults


@pytest.mark.parametrize(
    ("kind", "direction"),
    [("corrupt", "rx"), ("corrupt", "tx"), ("drop", "rx"), ("drop", "tx")],
)
async def test_damaged_bytes_are_recovered_by_retransmission(
    sim: StationSimulator, station: SerialKeyStation, kind: str, direction: str
) -> None:
    await insert(sim, station)
    link = station._link
    assert link is not None
    before = link.stats.retransmissions
    # the host sends a write in a few bursts (one read of the line each): damage the first two
    sim.faults.set(kind, count=2, every=1, direction=direction)
    image = make_image(3, entries=120)
    result = await station.write_key(image)
    assert result.revision == image.revision
    assert sim.world.registry.get(SERIAL).image == canonical(image)
    assert link.stats.retransmissions > before
    assert await station.read_key() == canonical(image)
    assert sim.device.stats.commits == 1


async def test_lost_acknowledgement_does_not_apply_a_request_twice(
    sim: StationSimulator, station: SerialKeyStation
) -> None:
    key = sim.world.registry.get(SERIAL)
    for i in range(6):
        key.record_own(at=T0, cylinder=i + 1, outcome=AuditOutcome.GRANTED)
    await insert(sim, station)
    assert len(await station.read_audit()) == 6
    sim.faults.set("corrupt", count=1, direction="tx")  # the reply to CLEAR_AUDIT is damaged
    link = station._link
    assert link is not None
    await station.clear_audit(3)
    assert sim.device.stats.duplicates >= 1
    assert [r.sequence for r in key.audit] == [4, 5, 6]


async def test_persistent_corruption_gives_up(
    sim: StationSimulator, station: SerialKeyStation
) -> None:
    await insert(sim, station)
    sim.faults.set("corrupt", count=-1, direction="tx")
    with pytest.raises((ProtocolError, DeviceTimeout)) as info:
        await station.read_key()
    if isinstance(info.value, ProtocolError):
        assert info.value.field == "crc"
    sim.faults.set("clear")
    assert (await station.read_key()).serial == SERIAL


async def test_slow_device_within_and_beyond_the_timeout(
    sim: StationSimulator, station: SerialKeyStation
) -> None:
    await insert(sim, station)
    sim.faults.set("slow", delay_s=0.1)
    assert (await station.read_key()).serial == SERIAL
    await station.close()  # the port is opened exclusively
    quick = SerialKeyStation(port=sim.pty_path, timeout_s=0.05, retries=1)
    sim.faults.set("clear")
    await quick.open()
    try:
        await next_event(quick)
        sim.faults.set("slow", delay_s=0.5)
        with pytest.raises(DeviceTimeout):
            await quick.read_key()
    finally:
        await quick.close()


async def test_disconnect_mid_write_makes_the_station_unavailable(
    sim: StationSimulator, station: SerialKeyStation
) -> None:
    await insert(sim, station)
    key = sim.world.registry.get(SERIAL)
    old = key.image
    sim.faults.set("disconnect", after_chunks=2)
    with pytest.raises(DeviceUnavailable):
        await station.write_key(make_image(1, entries=200))
    assert key.image == old
    with pytest.raises(DeviceUnavailable):
        async for _ in station.events():
            pass
    await asyncio.wait_for(sim.device.disconnected.wait(), 2)
    station.port = await sim.reconnect()  # plugged in again, on a new device node
    await station.open()
    assert station.info.station_id == "desk-1"
    assert (await next_event(station)).serial == SERIAL
    assert await station.read_key() == old


# ---------------------------------------------------------------------------- audit


async def test_audit_trail_is_read_oldest_first_and_cleared(
    sim: StationSimulator, station: SerialKeyStation
) -> None:
    world = sim.world
    world.add_cylinder(100_001)
    world.add_cylinder(555)
    key = world.registry.get(SERIAL)
    image = make_image(1, entries=30, revalidate_by=None)
    key.store(
        encode_image(dataclasses.replace(image, access=(*image.access, AccessEntry(100_001))))
    )
    world.clock.set(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))  # a Monday, inside the schedule
    world.visit(SERIAL, 100_001)
    world.visit(SERIAL, 555)
    await insert(sim, station)
    records = await station.read_audit()
    own = [r for r in records if r.source == "key"]
    carried = [r for r in records if r.source == "cylinder"]
    assert [(r.cylinder, r.outcome) for r in own] == [
        (100_001, AuditOutcome.GRANTED),
        (555, AuditOutcome.DENIED),
    ]
    assert own[1].reason == "NOT_PROGRAMMED"
    assert {r.outcome for r in carried} >= {AuditOutcome.BLACKLIST_APPLIED, AuditOutcome.GRANTED}
    applied = next(r for r in carried if r.outcome is AuditOutcome.BLACKLIST_APPLIED)
    assert (applied.cylinder, applied.blacklist_version) == (100_001, 4)
    assert records[0].at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC).replace(
        second=records[0].at.second
    )
    await station.clear_audit(len(records))
    assert await station.read_audit() == []


async def test_audit_trail_longer_than_one_frame(
    sim: StationSimulator, station: SerialKeyStation
) -> None:
    key = sim.world.registry.get(SERIAL)
    for i in range(100):
        key.record_own(at=T0, cylinder=i + 1, outcome=AuditOutcome.GRANTED)
    await insert(sim, station)
    records = await station.read_audit()
    assert [r.sequence for r in records] == list(range(1, 101))
    await station.clear_audit(40)
    assert [r.sequence for r in await station.read_audit()] == list(range(41, 101))
    for bad in (-1, 61):
        with pytest.raises(ValueError, match=r"^count: "):
            await station.clear_audit(bad)


async def test_clear_never_erases_records_that_were_not_read(
    sim: StationSimulator, station: SerialKeyStation
) -> None:
    key = sim.world.registry.get(SERIAL)
    key.record_own(at=T0, cylinder=1, outcome=AuditOutcome.GRANTED)
    await insert(sim, station)
    assert len(await station.read_audit()) == 1
    key.record_own(at=T0, cylinder=2, outcome=AuditOutcome.GRANTED)  # arrives after the read
    with pytest.raises(ValueError, match=r"^count: 2 records, but 1 were read"):
        await station.clear_audit(2)
    await station.clear_audit(1)
    assert [r.sequence for r in key.audit] == [2]


async def test_clear_audit_counts_records_not_sequence_numbers(
    sim: StationSimulator, station: SerialKeyStation
) -> None:
    """Own records (1, 2) and a cylinder's record (7) interleave; clearing the first two
    erases exactly those two, whatever their numbers."""
    key = sim.world.registry.get(SERIAL)
    key.record_own(at=T0, cylinder=1, outcome=AuditOutcome.GRANTED)
    key.carry(
        [
            KeyAuditRecord(
                sequence=7,
                at=T0,
                cylinder=9,
                key_serial="100000009",
                outcome=AuditOutcome.DENIED,
                reason="BLACKLISTED",
                source="cylinder",
            )
        ]
    )
    key.record_own(at=T0, cylinder=2, outcome=AuditOutcome.GRANTED)
    await insert(sim, station)
    assert [r.sequence for r in await station.read_audit()] == [1, 7, 2]
    await station.clear_audit(2)
    assert [(r.source, r.sequence) for r in key.audit] == [("key", 2)]


async def test_clear_audit_erases_nothing_when_the_trail_changed_since_it_was_read(
    sim: StationSimulator, station: SerialKeyStation
) -> None:
    key = sim.world.registry.add("100000077", audit_capacity=2)
    key.record_own(at=T0, cylinder=1, outcome=AuditOutcome.GRANTED)
    key.record_own(at=T0, cylinder=2, outcome=AuditOutcome.GRANTED)
    await insert(sim, station, "100000077")
    assert len(await station.read_audit()) == 2
    key.record_own(at=T0, cylinder=3, outcome=AuditOutcome.GRANTED)  # overwrites record 1
    with pytest.raises(VerifyMismatch, match="AUDIT_CHANGED"):
        await station.clear_audit(1)
    assert [r.sequence for r in key.audit] == [2, 3]


# ---------------------------------------------------------------------------- other ports


async def test_driver_over_a_socket_url(world: SimWorld) -> None:
    device_config = StationConfig(station_id="tcp-1", baudrate=0)
    from simulators.station import StationDevice

    device = StationDevice(device_config, registry=world.registry)
    attached = asyncio.Event()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await device.attach(StreamPort(reader, writer, "tcp"))
        attached.set()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with SerialKeyStation(port=f"socket://127.0.0.1:{port}", timeout_s=0.3) as station:
            assert station.info.station_id == "tcp-1"
            device.insert(SERIAL)
            await next_event(station)
            image = make_image(4)
            await station.write_key(image)
            assert await station.read_key() == canonical(image)
    finally:
        await device.detach()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("open_write", [False, True])
async def test_chunks_that_overtake_a_retransmitted_begin_are_staged_again(
    sim: StationSimulator,
    station: SerialKeyStation,
    monkeypatch: pytest.MonkeyPatch,
    open_write: bool,
) -> None:
    """The first WRITE_BEGIN arrives damaged (NAK): the chunks sent behind it reach the
    station before its retransmission and are refused (no write open) or staged into an
    older open write that the retransmitted begin discards. Either way the driver stages
    the write again and the key gets exactly the image."""
    from drivers.serialstation.codes import MessageType
    from drivers.serialstation.frames import Frame, FrameError, FrameErrorKind
    from simulators.station import StationDevice

    await insert(sim, station)
    if open_write:
        # an older write left open (its commit was refused as INCOMPLETE), of the same size
        data = encode_image(make_image(1, entries=120))
        sim.device._write_begin(_full_begin(len(data)))
    original = StationDevice._handle
    damaged: list[int] = []

    async def handle(self: StationDevice, item: Frame | FrameError) -> None:
        if isinstance(item, Frame) and item.type == MessageType.WRITE_BEGIN and not damaged:
            damaged.append(item.seq)
            item = FrameError(FrameErrorKind.BAD_CRC, item.seq, item.type)
        await original(self, item)

    monkeypatch.setattr(StationDevice, "_handle", handle)
    image = make_image(1, entries=120)
    result = await station.write_key(image)
    assert damaged
    assert result.bytes_sent > 2 * len(encode_image(image))  # the chunks went twice
    assert result.revision == image.revision
    assert sim.world.registry.get(SERIAL).image == canonical(image)
    assert sim.device.stats.commits == 1


def _full_begin(length: int) -> Any:
    from drivers.serialstation.codes import WriteMode
    from drivers.serialstation.messages import WriteBegin

    return WriteBegin(WriteMode.FULL, length, 0, 0)

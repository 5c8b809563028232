"""Replies that are not the register map are refused with ProtocolError, never accepted.

A rogue Modbus TCP server on 127.0.0.1 answers with whatever registers hypothesis draws
(random ones, and valid ones with a few registers corrupted); whatever the driver accepts
must be exactly the canonical encoding of what it returns."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from hypothesis import event, given, settings
from hypothesis import strategies as st
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.base import ProtocolError
from drivers.modbusdoor import ModbusDoorController
from drivers.modbusdoor import registers as rm
from tests.drivers.modbusdoor import strategies as s

T = TypeVar("T")

IDENTITY = rm.Identity(
    controller_id="rogue",
    doors=4,
    capacity=100,
    schedule_slots=4,
    event_capacity=10,
    event_window=3,
    generation=9,
)
WINDOW_REGS = rm.window_records_needed(IDENTITY.event_window)


async def _against_rogue(
    inputs: dict[int, int], scenario: Callable[[ModbusDoorController], Awaitable[T]]
) -> T | ProtocolError:
    """Run ``scenario`` with a driver connected to a server serving ``inputs``."""

    async def action(
        function_code: int,
        start: int,
        address: int,
        count: int,
        registers: list[int],
        values: Sequence[int] | None,
    ) -> ExcCodes | None:
        if function_code == 4:
            for a in range(address, address + count):
                registers[a - start] = inputs.get(a, 0)
        return None

    device = SimDevice(
        1,
        simdata=(
            [SimData(0, count=16, values=False, datatype=DataType.BITS)],
            [SimData(0, count=16, values=False, datatype=DataType.BITS)],
            [SimData(0, count=0x40, values=0, datatype=DataType.REGISTERS)],
            [SimData(0, count=0x100, values=0, datatype=DataType.REGISTERS)],
        ),
        action=action,
    )
    server = ModbusTcpServer(device, address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    listener = server.transport
    assert isinstance(listener, asyncio.Server)
    port = listener.sockets[0].getsockname()[1]
    drv = ModbusDoorController.from_options(
        {"host": "127.0.0.1", "port": port, "timeout_s": 1.0, "retries": 0}
    )
    try:
        try:
            return await scenario(drv)
        except ProtocolError as exc:
            return exc
    finally:
        await drv.close()
        await server.shutdown()  # type: ignore[no-untyped-call]
        with contextlib.suppress(OSError):
            await listener.wait_closed()


def _block(base: int, registers: Sequence[int]) -> dict[int, int]:
    return {base + i: r for i, r in enumerate(registers)}


VALID_IDENTITY = _block(rm.IDENTITY_BASE, rm.encode_identity(IDENTITY))


@settings(max_examples=40)
@given(s.garbage(s.identities.map(rm.encode_identity), rm.IDENTITY_COUNT))
def test_identity_replies(registers: list[int]) -> None:
    async def scenario(drv: ModbusDoorController) -> rm.Identity | None:
        await drv.open()
        return drv._identity

    outcome = asyncio.run(_against_rogue(_block(0, registers), scenario))
    event("refused" if isinstance(outcome, ProtocolError) else "accepted")
    if isinstance(outcome, ProtocolError):
        assert outcome.field
        return
    assert outcome is not None
    assert rm.encode_identity(outcome) == registers


@settings(max_examples=40)
@given(
    s.garbage(
        st.builds(
            rm.Status,
            commit=st.sampled_from(list(rm.CommitStatus)),
            command_tag=s.registers16,
            active_checksum=st.integers(0, rm.U32_MAX),
            active_entries=st.integers(0, 100),
            active_schedules=st.integers(0, 4),
            generation=st.just(IDENTITY.generation),
            staging_checksum=st.integers(0, rm.U32_MAX),
        ).map(rm.encode_status),
        rm.STATUS_COUNT,
    )
)
def test_status_replies(registers: list[int]) -> None:
    async def scenario(drv: ModbusDoorController) -> int:
        await drv.open()
        return await drv.read_checksum()

    inputs = {**VALID_IDENTITY, **_block(rm.STATUS_BASE, registers)}
    outcome = asyncio.run(_against_rogue(inputs, scenario))
    event("refused" if isinstance(outcome, ProtocolError) else "accepted")
    if isinstance(outcome, ProtocolError):
        return
    status = rm.decode_status(registers, capacity=IDENTITY.capacity)
    assert outcome == status.active_checksum
    assert rm.encode_status(status) == registers


@st.composite
def event_blocks(draw: st.DrawFn) -> list[int]:
    """A valid event block for a read after sequence 0 with a window of 3."""
    stored = draw(st.integers(0, IDENTITY.event_capacity))
    oldest = draw(st.integers(1, 1000)) if stored else 0
    shown = min(stored, IDENTITY.event_window)
    records = [
        rm.EventRecord(
            sequence=oldest + i,
            kind=rm.EventKindCode.GRANTED,
            reason=rm.DenyReason.NONE,
            door=draw(st.integers(1, IDENTITY.doors)),
            credential=draw(st.integers(0, rm.U32_MAX)),
            at=draw(st.integers(0, rm.U32_MAX)),
        )
        for i in range(shown)
    ]
    header = rm.EventHeader(
        stored=stored,
        overflow=draw(st.booleans()),
        oldest=oldest,
        newest=oldest + stored - 1 if stored else draw(st.integers(0, 10)),
        cursor=0,
        window_count=shown,
    )
    regs = rm.encode_event_header(header) + [v for r in records for v in rm.encode_event(r)]
    return regs + [0] * (WINDOW_REGS - len(regs))


@settings(max_examples=40)
@given(s.garbage(event_blocks(), WINDOW_REGS))
def test_event_window_replies(registers: list[int]) -> None:
    async def scenario(drv: ModbusDoorController) -> list[int]:
        await drv.open()
        events = await drv.read_events(0, limit=IDENTITY.event_window)
        return [e.sequence for e in events]

    inputs = {**VALID_IDENTITY, **_block(rm.EVENT_HEADER_BASE, registers)}
    outcome = asyncio.run(_against_rogue(inputs, scenario))
    event("refused" if isinstance(outcome, ProtocolError) else "accepted")
    if isinstance(outcome, ProtocolError):
        return
    header = rm.decode_event_header(
        registers[: rm.EVENT_HEADER_COUNT],
        event_capacity=IDENTITY.event_capacity,
        event_window=IDENTITY.event_window,
    )
    assert header.cursor == 0
    assert len(outcome) == header.window_count
    assert outcome == sorted(set(outcome))
    assert all(header.oldest <= seq <= header.newest for seq in outcome)
    for i in range(IDENTITY.event_window):
        raw = registers[rm.EVENT_HEADER_COUNT + 8 * i : rm.EVENT_HEADER_COUNT + 8 * (i + 1)]
        if i < header.window_count:
            record = rm.decode_event(raw)
            assert record.sequence == outcome[i]
            assert record.door <= IDENTITY.doors
            assert rm.encode_event(record) == raw
        else:
            assert not any(raw)


def test_a_wrong_magic_is_refused_at_open() -> None:
    async def scenario(drv: ModbusDoorController) -> None:
        await drv.open()

    inputs = {**VALID_IDENTITY, rm.IDENT_MAGIC: 0x4D42}
    outcome = asyncio.run(_against_rogue(inputs, scenario))
    assert isinstance(outcome, ProtocolError)
    assert outcome.field == "magic"

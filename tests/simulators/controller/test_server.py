"""The simulated controller on the wire, seen by a plain pymodbus client (TCP and RTU)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU

from drivers.base import AllowEntry
from drivers.modbusdoor import registers as rm
from drivers.modbusdoor.layout import encode_entries, entry_writes, full_layout
from simulators.controller import ControllerMemory, ControllerServer, PtyLink

Client = AsyncModbusTcpClient | AsyncModbusSerialClient


@pytest.fixture
def memory() -> ControllerMemory:
    return ControllerMemory(controller_id="srv-1", doors=2, capacity=20, schedule_slots=2)


@pytest.fixture(params=["tcp", "rtu"])
async def server(
    request: pytest.FixtureRequest, memory: ControllerMemory
) -> AsyncIterator[ControllerServer]:
    srv = ControllerServer(memory, transport=request.param)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.close()


@pytest.fixture
async def client(server: ControllerServer) -> AsyncIterator[Client]:
    c: Client
    if server.transport == "tcp":
        c = AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=1, retries=0)
    else:
        c = AsyncModbusSerialClient(server.client_path, timeout=1, retries=0)
    assert await c.connect()
    try:
        yield c
    finally:
        c.close()


def _exception(reply: ModbusPDU) -> int:
    assert reply.isError(), reply
    return int(getattr(reply, "exception_code", 0))


async def test_identity_and_status_blocks(client: Client, memory: ControllerMemory) -> None:
    reply = await client.read_input_registers(0, count=rm.IDENTITY_COUNT, device_id=1)
    identity = rm.decode_identity(list(reply.registers))
    assert identity == memory.identity()
    reply = await client.read_input_registers(rm.STATUS_BASE, count=rm.STATUS_COUNT, device_id=1)
    status = rm.decode_status(list(reply.registers))
    assert status.active_checksum == rm.EMPTY_CHECKSUM
    assert status.commit is rm.CommitStatus.IDLE


async def test_addresses_outside_the_map_are_refused(client: Client) -> None:
    reply = await client.read_input_registers(rm.IDENTITY_COUNT, count=1, device_id=1)
    assert _exception(reply) == ExcCodes.ILLEGAL_ADDRESS
    reply = await client.read_holding_registers(rm.entry_address(20), count=1, device_id=1)
    assert _exception(reply) == ExcCodes.ILLEGAL_ADDRESS
    reply = await client.write_coil(2, True, device_id=1)  # door 3 of a 2-door controller
    assert _exception(reply) == ExcCodes.ILLEGAL_ADDRESS


async def test_refused_values(client: Client, memory: ControllerMemory) -> None:
    # Half of a 32-bit field.
    reply = await client.write_register(rm.HOLD_CLOCK + 1, 5, device_id=1)
    assert _exception(reply) == ExcCodes.ILLEGAL_VALUE
    reply = await client.write_register(rm.door_mode_address(1), 4, device_id=1)
    assert _exception(reply) == ExcCodes.ILLEGAL_VALUE
    reply = await client.write_register(rm.HOLD_PULSE_SECONDS, 0, device_id=1)
    assert _exception(reply) == ExcCodes.ILLEGAL_VALUE
    reply = await client.write_register(rm.HOLD_COMMAND, 7, device_id=1)
    assert _exception(reply) == ExcCodes.ILLEGAL_VALUE
    # A refused write changes nothing, not even its valid registers.
    reply = await client.write_registers(
        rm.HOLD_PULSE_SECONDS, [9, 0], device_id=1
    )  # pulse ok, held-open 0 refused
    assert _exception(reply) == ExcCodes.ILLEGAL_VALUE
    assert memory.pulse_seconds == rm.DEFAULT_PULSE_SECONDS


async def test_single_register_writes_echo_the_stored_value(
    client: Client, memory: ControllerMemory
) -> None:
    reply = await client.write_register(rm.door_mode_address(2), 3, device_id=1)
    assert not reply.isError()
    assert list(reply.registers) == [3]
    assert memory.doors[1].mode is rm.DoorModeCode.LOCKDOWN
    reply = await client.write_register(rm.HOLD_PULSE_SECONDS, 12, device_id=1)
    assert list(reply.registers) == [12]
    reply = await client.read_holding_registers(rm.HOLD_CLOCK, count=4, device_id=1)
    assert list(reply.registers)[2:] == [12, rm.DEFAULT_HELD_OPEN_SECONDS]


async def test_commit_over_the_wire(client: Client, memory: ControllerMemory) -> None:
    layout = full_layout(
        (), encode_entries([AllowEntry(credential=c, doors_mask=1) for c in range(1, 16)])
    )
    for w in entry_writes(layout):
        assert not (await client.write_registers(w.address, list(w.values), device_id=1)).isError()
    reply = await client.read_holding_registers(rm.entry_address(0), count=8, device_id=1)
    assert tuple(reply.registers) == layout.rows[0]
    block = rm.encode_commit_block(
        entries=15, schedules=0, expected_checksum=layout.checksum, command=rm.Command.COMMIT, tag=9
    )
    assert not (await client.write_registers(rm.COMMIT_BLOCK_BASE, block, device_id=1)).isError()
    reply = await client.read_input_registers(rm.STATUS_BASE, count=rm.STATUS_COUNT, device_id=1)
    status = rm.decode_status(list(reply.registers))
    assert (status.commit, status.command_tag, status.active_checksum) == (
        rm.CommitStatus.OK,
        9,
        layout.checksum,
    )
    # More entries than the capacity.
    block = rm.encode_commit_block(
        entries=21, schedules=0, expected_checksum=0, command=rm.Command.COMMIT, tag=10
    )
    await client.write_registers(rm.COMMIT_BLOCK_BASE, block, device_id=1)
    reply = await client.read_input_registers(rm.STATUS_BASE, count=2, device_id=1)
    assert list(reply.registers) == [rm.CommitStatus.CAPACITY_EXCEEDED, 10]
    assert memory.active_checksum == layout.checksum


async def test_staging_is_refused_while_a_commit_is_busy(
    client: Client, memory: ControllerMemory
) -> None:
    memory.faults.commit_busy_s = 30
    await client.write_register(rm.HOLD_COMMAND, rm.Command.COMMIT, device_id=1)
    reply = await client.write_registers(rm.entry_address(0), [1] * 8, device_id=1)
    assert _exception(reply) == ExcCodes.DEVICE_BUSY
    # Other registers stay writable.
    reply = await client.write_register(rm.door_mode_address(1), 1, device_id=1)
    assert not reply.isError()


async def test_pulse_coil_and_door_inputs(client: Client, memory: ControllerMemory) -> None:
    reply = await client.write_coil(1, True, device_id=1)
    assert not reply.isError()
    assert list(reply.bits)[:1] == [True]
    reply = await client.read_coils(0, count=2, device_id=1)
    assert list(reply.bits)[:2] == [False, True]
    memory.set_door_open(1, True)
    reply = await client.read_discrete_inputs(0, count=8, device_id=1)
    # door 1: open, forced, not held open, locked; door 2: closed, released by the pulse
    assert list(reply.bits)[:8] == [True, True, False, False, False, False, False, True]
    await client.write_coil(1, False, device_id=1)
    assert not memory.unlocked(2)


async def test_events_cursor_and_ack(client: Client, memory: ControllerMemory) -> None:
    for credential in range(1, 6):
        memory.present(credential, 1)
    await client.write_registers(rm.HOLD_EVENT_READ_AFTER, rm.split_u32(2), device_id=1)
    count = rm.window_records_needed(memory.event_window)
    reply = await client.read_input_registers(rm.EVENT_HEADER_BASE, count=count, device_id=1)
    regs = list(reply.registers)
    header = rm.decode_event_header(regs[:16], event_capacity=256, event_window=12)
    assert (header.stored, header.cursor, header.window_count) == (5, 2, 3)
    assert rm.decode_event(regs[16:24]).sequence == 3
    await client.write_registers(rm.HOLD_EVENT_ACK, rm.split_u32(4), device_id=1)
    assert [e.sequence for e in memory.events] == [5]
    reply = await client.read_holding_registers(rm.HOLD_EVENT_READ_AFTER, count=4, device_id=1)
    assert list(reply.registers) == [0, 2, 0, 4]


async def test_clock_registers(client: Client, memory: ControllerMemory) -> None:
    await client.write_registers(rm.HOLD_CLOCK, rm.split_u32(2_000_000_000), device_id=1)
    assert abs(memory.now() - 2_000_000_000) < 2
    reply = await client.read_holding_registers(rm.HOLD_CLOCK, count=2, device_id=1)
    assert abs(rm.join_u32(*reply.registers) - 2_000_000_000) < 2


async def test_tcp_restart_keeps_the_port(memory: ControllerMemory) -> None:
    srv = ControllerServer(memory, transport="tcp")
    await srv.start()
    try:
        port = srv.port
        generation = memory.generation
        assert await srv.restart() == generation + 1
        assert srv.port == port
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
        assert await client.connect()
        reply = await client.read_input_registers(rm.IDENT_GENERATION, count=2, device_id=1)
        client.close()
        assert rm.join_u32(*reply.registers) == generation + 1
    finally:
        await srv.close()
        await srv.close()


async def test_tcp_drop_closes_client_connections(memory: ControllerMemory) -> None:
    srv = ControllerServer(memory, transport="tcp")
    await srv.start()
    lost = asyncio.Event()
    client = AsyncModbusTcpClient(
        "127.0.0.1",
        port=srv.port,
        timeout=1,
        retries=0,
        reconnect_delay=0,
        trace_connect=lambda up: None if up else lost.set(),
    )
    try:
        assert await client.connect()
        await client.read_input_registers(0, count=1, device_id=1)
        assert srv.drop_connections() == 1
        await asyncio.wait_for(lost.wait(), 2)
    finally:
        client.close()
        await srv.close()


async def test_pty_link_relays_and_can_be_cut() -> None:
    link = PtyLink()
    link.open()
    device = os.open(link.device_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    client = os.open(link.client_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    loop = asyncio.get_running_loop()

    async def read(fd: int, size: int, wait_s: float = 2.0) -> bytes:
        data = b""
        deadline = loop.time() + wait_s
        while len(data) < size and loop.time() < deadline:
            try:
                data += os.read(fd, size - len(data))
            except BlockingIOError:
                await asyncio.sleep(0.01)
        return data

    try:
        os.write(client, b"\x01\x03ping")
        assert await read(device, 6) == b"\x01\x03ping"
        os.write(device, b"pong\n")  # raw mode: no line discipline, no echo
        assert await read(client, 5) == b"pong\n"
        link.cut(0.3)
        assert link.is_cut
        os.write(client, b"lost")
        assert await read(device, 4, wait_s=0.2) == b""
        await asyncio.sleep(0.15)
        assert not link.is_cut
        os.write(client, b"back")
        assert await read(device, 4) == b"back"
    finally:
        os.close(device)
        os.close(client)
        link.close()
        link.close()


def test_server_arguments_are_checked(memory: ControllerMemory) -> None:
    with pytest.raises(ValueError, match=r"^transport: "):
        ControllerServer(memory, transport="udp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^unit: "):
        ControllerServer(memory, unit=0)
    with pytest.raises(ValueError, match=r"^port: "):
        ControllerServer(memory, port=70000)


async def test_command_and_tag_registers(client: Client, memory: ControllerMemory) -> None:
    await client.write_register(rm.HOLD_COMMAND_TAG, 33, device_id=1)
    reply = await client.read_input_registers(rm.STATUS_BASE, count=2, device_id=1)
    assert list(reply.registers) == [rm.CommitStatus.IDLE, 0]  # a tag alone runs nothing
    reply = await client.write_register(
        rm.HOLD_COMMAND, rm.Command.COPY_ACTIVE_TO_STAGING, device_id=1
    )
    assert list(reply.registers) == [rm.Command.COPY_ACTIVE_TO_STAGING]
    reply = await client.read_input_registers(rm.STATUS_BASE, count=2, device_id=1)
    assert list(reply.registers) == [rm.CommitStatus.OK, 33]
    memory.power_loss()
    reply = await client.read_holding_registers(rm.HOLD_COMMAND, count=2, device_id=1)
    assert list(reply.registers) == [0, 0]


async def test_rtu_on_a_given_serial_device(memory: ControllerMemory) -> None:
    cable = PtyLink()  # stands for a serial cable; the server gets one end by its path
    cable.open()
    srv = ControllerServer(memory, transport="rtu", device=cable.device_path, unit=5)
    await srv.start()
    client = AsyncModbusSerialClient(cable.client_path, timeout=1, retries=0)
    try:
        assert srv.device_path == cable.device_path
        assert srv.describe() == {"transport": "rtu", "baudrate": 19200, "unit": 5}
        with pytest.raises(RuntimeError):
            _ = srv.client_path
        assert await client.connect()
        reply = await client.read_input_registers(rm.IDENT_MAGIC, count=2, device_id=5)
        assert list(reply.registers) == [rm.MAGIC, rm.MAP_VERSION]
    finally:
        client.close()
        await srv.close()
        cable.close()

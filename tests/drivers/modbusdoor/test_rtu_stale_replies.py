"""On Modbus RTU a request is never answered by the reply to an earlier one.

Between the driver and the simulated controller sits a relay on real pseudo-terminals that
can hold the controller's replies back (a slow device, a congested RS-485 gateway) and can
put an old reply on the line (an echo from a previous exchange). Replies keep their order,
as on a serial line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import AsyncIterator

import pytest

from drivers.modbusdoor import ModbusDoorController
from drivers.modbusdoor import registers as rm
from simulators.controller import ControllerMemory, ControllerServer

TIMEOUT_S = 0.8


class DelayingRelay:
    """Relays bytes between the driver's pty and the simulator's; the reply to the driver's
    ``n``-th frame is held back ``delays[n]`` seconds (never overtaking an earlier one), and
    ``inject[n]`` is written to the driver right after its ``n``-th frame."""

    def __init__(self, device_path: str) -> None:
        self.delays: dict[int, float] = {}
        self.inject: dict[int, bytes] = {}
        self.requests = 0
        self.replies: list[bytes] = []
        self._loop = asyncio.get_running_loop()
        self._device = os.open(device_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self._device)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # kept open: a closed driver port must not fail the relay
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._released = 0.0
        self._pending: list[asyncio.TimerHandle] = []
        self._loop.add_reader(self._master, self._from_driver)
        self._loop.add_reader(self._device, self._from_device)

    def _from_driver(self) -> None:
        with contextlib.suppress(BlockingIOError):
            data = os.read(self._master, 4096)
            self.requests += 1
            os.write(self._device, data)
            if self.requests in self.inject:
                os.write(self._master, self.inject[self.requests])

    def _from_device(self) -> None:
        with contextlib.suppress(BlockingIOError):
            data = os.read(self._device, 4096)
            self.replies.append(data)
            now = self._loop.time()
            self._released = max(now + self.delays.get(self.requests, 0.0), self._released)
            self._pending.append(self._loop.call_at(self._released, self._release, data))

    def _release(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self._master, data)

    def close(self) -> None:
        for handle in self._pending:
            handle.cancel()
        self._loop.remove_reader(self._master)
        self._loop.remove_reader(self._device)
        for fd in (self._master, self._slave, self._device):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def memory() -> ControllerMemory:
    return ControllerMemory(controller_id="rtu-stale", doors=2, capacity=50)


@pytest.fixture
async def relay(memory: ControllerMemory) -> AsyncIterator[DelayingRelay]:
    server = ControllerServer(memory, transport="rtu", baudrate=115200)
    await server.start()
    relay = DelayingRelay(server.client_path)
    try:
        yield relay
    finally:
        relay.close()
        await server.close()


def _driver(relay: DelayingRelay) -> ModbusDoorController:
    return ModbusDoorController.from_options(
        {
            "transport": "rtu",
            "port": relay.path,
            "baudrate": 115200,
            "timeout_s": TIMEOUT_S,
            "retries": 2,
        }
    )


async def test_a_late_reply_is_not_taken_by_the_next_request(
    relay: DelayingRelay, memory: ControllerMemory
) -> None:
    """The reply to the first identity read comes 1.5 timeouts late, the reply to its
    retransmission 1.25 timeouts late. Taking the late first reply for the retransmission's
    leaves the retransmission's reply on the line for the next read, which then misses the
    power loss that happened in between."""
    relay.delays = {1: 1.5 * TIMEOUT_S, 2: 1.25 * TIMEOUT_S}
    drv = _driver(relay)
    try:
        await drv.open()
        generation = memory.power_loss()
        assert (await drv.read_info()).generation == generation
    finally:
        await drv.close()


async def test_a_reply_that_does_not_fit_the_request_is_not_taken(
    relay: DelayingRelay, memory: ControllerMemory
) -> None:
    """An identity block on the line right after a status read (an old reply) is not the
    status: the driver lets the line fall silent and asks again."""
    drv = _driver(relay)
    try:
        await drv.open()
        identity_reply = relay.replies[-1]
        assert identity_reply[:3] == bytes([1, 4, 2 * rm.IDENTITY_COUNT])
        relay.inject = {relay.requests + 1: identity_reply}
        assert await drv.read_checksum() == memory.active_checksum
    finally:
        await drv.close()

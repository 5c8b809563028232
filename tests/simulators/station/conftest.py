"""A raw host for protocol-level tests: frames in and out of the simulator's pty."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from drivers.serialstation.codes import MessageType
from drivers.serialstation.frames import Frame, FrameDecoder, FrameError
from drivers.serialstation.messages import Message, decode_message, encode_message
from drivers.serialstation.transport import FdTransport
from simulators.station import SimWorld, StationConfig, StationSimulator


class RawHost:
    """Writes frames to the pty and collects what the station sends."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.decoder = FrameDecoder()
        self.inbox: asyncio.Queue[Frame | FrameError] = asyncio.Queue()
        self.notes: asyncio.Queue[Frame] = asyncio.Queue()
        self.transport = FdTransport(
            fileno=self._fd,
            read=lambda: os.read(self._fd, 65536),
            write=lambda data: os.write(self._fd, data),
            close=lambda: os.close(self._fd),
            on_data=self._on_data,
            on_lost=lambda exc: None,
        )

    def _on_data(self, data: bytes) -> None:
        for item in self.decoder.feed(data):
            if isinstance(item, Frame) and MessageType(item.type).is_notification:
                self.notes.put_nowait(item)
            else:
                self.inbox.put_nowait(item)

    def send_raw(self, raw: bytes) -> None:
        self.transport.write(raw)

    def send(self, seq: int, message: Message) -> bytes:
        raw = encode_message(seq, message)
        self.send_raw(raw)
        return raw

    async def frame(self, within: float = 2.0) -> Frame:
        item = await asyncio.wait_for(self.inbox.get(), within)
        assert isinstance(item, Frame), item
        return item

    async def message(self, within: float = 2.0) -> tuple[int, Message]:
        frame = await self.frame(within)
        return frame.seq, decode_message(frame)

    async def call(self, seq: int, message: Message) -> Message:
        self.send(seq, message)
        got_seq, reply = await self.message()
        assert got_seq == seq
        return reply

    async def note(self, within: float = 2.0) -> tuple[int, Message]:
        """The next notification the station sent (not acknowledged automatically)."""
        frame = await asyncio.wait_for(self.notes.get(), within)
        return frame.seq, decode_message(frame)

    def close(self) -> None:
        self.transport.close()


@pytest.fixture
def world() -> SimWorld:
    w = SimWorld()
    w.add_key("100000001")
    return w


@pytest.fixture
async def sim(world: SimWorld) -> AsyncIterator[StationSimulator]:
    config = StationConfig(station_id="raw-1", baudrate=0, notify_timeout_s=0.2, max_payload=256)
    async with StationSimulator(world=world, config=config, control_port=None) as simulator:
        yield simulator


@pytest.fixture
async def host(sim: StationSimulator) -> AsyncIterator[RawHost]:
    raw = RawHost(sim.pty_path)
    try:
        yield raw
    finally:
        raw.close()

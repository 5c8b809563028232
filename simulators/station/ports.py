"""Where a simulated station's bytes go: a pseudo-terminal whose slave path the driver
opens like a serial device, or an asyncio stream pair (e.g. a TCP connection that the
driver reaches as ``socket://host:port``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Callable

from drivers.serialstation.transport import FdTransport

DataCallback = Callable[[bytes], None]
LostCallback = Callable[[Exception | None], None]


class Port:
    """A byte link the station writes to; received bytes go to the callbacks given at
    :meth:`start`."""

    description = ""

    async def start(self, on_data: DataCallback, on_lost: LostCallback) -> None:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class PtyPort(Port):
    """A fresh pseudo-terminal in raw mode. :attr:`path` is the slave device to open.

    The simulator keeps a slave descriptor open itself, so the line stays up while no
    driver has it open (bytes written meanwhile wait in the terminal; the driver discards
    them when it opens the port)."""

    def __init__(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master = master
        self._slave = slave
        self.path = os.ttyname(slave)
        self.description = self.path
        self._transport: FdTransport | None = None

    async def start(self, on_data: DataCallback, on_lost: LostCallback) -> None:
        self._transport = FdTransport(
            fileno=self._master,
            read=lambda: os.read(self._master, 65536),
            write=lambda data: os.write(self._master, data),
            close=self._close_fds,
            on_data=on_data,
            on_lost=on_lost,
        )

    def _close_fds(self) -> None:
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.closed:
            self._transport.write(data)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        elif self._master >= 0:
            self._close_fds()


class StreamPort(Port):
    """An asyncio stream pair (for example one accepted TCP connection)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, description: str = ""
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.description = description or "stream"
        self._task: asyncio.Task[None] | None = None

    async def start(self, on_data: DataCallback, on_lost: LostCallback) -> None:
        async def pump() -> None:
            try:
                while data := await self._reader.read(65536):
                    on_data(data)
            except (ConnectionError, OSError) as exc:
                on_lost(exc)
                return
            on_lost(None)

        self._task = asyncio.create_task(pump(), name=f"station-port:{self.description}:read")

    def write(self, data: bytes) -> None:
        if not self._writer.is_closing():
            self._writer.write(data)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()

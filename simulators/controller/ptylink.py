"""A null-modem cable in software: two pseudo-terminals joined back to back.

A pseudo-terminal has one path (the slave side) and one file descriptor (the master side).
To let a serial server and a serial client each open a *path*, :class:`PtyLink` creates two
pty pairs and copies bytes between their masters on the event loop. The server opens
:attr:`PtyLink.device_path`, the client :attr:`PtyLink.client_path`, and both see an ordinary
serial port (baud rate and parity are accepted and ignored, as on any pty).

The link can be *cut* for a while (bytes in both directions are lost), which is how a
broken RS-485 line looks to a Modbus RTU master: requests go unanswered.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty


class _Pair:
    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        # Raw mode from the start: no echo, no line editing, even before a client opens the
        # path and configures it. The slave descriptor stays open for the life of the link so
        # that reading the master never fails with EIO while no client has the port open.
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class PtyLink:
    """Two pty pairs relayed back to back. Use :meth:`open` and :meth:`close` on one loop."""

    def __init__(self) -> None:
        self._device: _Pair | None = None
        self._client: _Pair | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cut_until = 0.0

    @property
    def device_path(self) -> str:
        """The path the simulated device (the Modbus server) opens."""
        if self._device is None:
            raise RuntimeError("the pty link is not open")
        return self._device.path

    @property
    def client_path(self) -> str:
        """The path a Modbus master (the driver) opens."""
        if self._client is None:
            raise RuntimeError("the pty link is not open")
        return self._client.path

    def open(self) -> None:
        if self._device is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._device, self._client = _Pair(), _Pair()
        self._loop.add_reader(self._device.master, self._relay, self._device, self._client)
        self._loop.add_reader(self._client.master, self._relay, self._client, self._device)

    def close(self) -> None:
        """Stop relaying and close every descriptor. Idempotent."""
        if self._loop is not None:
            for pair in (self._device, self._client):
                if pair is not None:
                    self._loop.remove_reader(pair.master)
        for pair in (self._device, self._client):
            if pair is not None:
                pair.close()
        self._device = self._client = None
        self._loop = None

    def cut(self, seconds: float) -> None:
        """Lose every byte in both directions for ``seconds`` (0 restores the line now)."""
        loop = self._loop or asyncio.get_running_loop()
        self._cut_until = loop.time() + seconds if seconds > 0 else 0.0

    @property
    def is_cut(self) -> bool:
        return self._loop is not None and self._loop.time() < self._cut_until

    def _relay(self, source: _Pair, target: _Pair) -> None:
        try:
            data = os.read(source.master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            # The pty is gone; stop watching it instead of spinning on the error.
            if self._loop is not None:
                self._loop.remove_reader(source.master)
            return
        if not data or self.is_cut:
            return
        # A line has no buffer: what the far end cannot take right now is lost.
        with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
            os.write(target.master, data)

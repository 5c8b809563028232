"""An RS-485 bus in software: one pseudo-terminal whose far end the panel opens as a serial
port, shared by the simulated readers on this end.

Every byte the panel sends reaches every reader (each has its own receive buffer), as on a
multi-drop line; what a reader sends goes to the panel. A reader can be cut off the bus (it
neither hears nor answers: "offline"), and raw bytes can be put on the line to play a
misbehaving device.
"""

from __future__ import annotations

import contextlib
import os
import threading
import tty

import osdp


class PtyBus:
    """The reader end of a pseudo-terminal. :attr:`path` is what the panel opens."""

    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        # Raw from the start (no echo, no line editing) even before the panel configures the
        # port; the slave stays open here so the master never reads EIO while no panel has
        # the port open.
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._lock = threading.Lock()
        self._channels: list[BusChannel] = []
        self._closed = False

    def channel(self) -> BusChannel:
        """A new reader's connection to the bus."""
        ch = BusChannel(self)
        with self._lock:
            self._channels.append(ch)
        return ch

    def _pump(self) -> None:
        """Move what the panel sent into every reader's receive buffer."""
        with self._lock:
            if self._closed:
                return
            while True:
                try:
                    data = os.read(self._master, 4096)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    return
                if not data:
                    return
                for ch in self._channels:
                    if not ch.cut:
                        ch.rx += data

    def _take(self, ch: BusChannel, max_bytes: int) -> bytes:
        self._pump()
        with self._lock:
            if ch.cut:
                ch.rx.clear()
                return b""
            data = bytes(ch.rx[:max_bytes])
            del ch.rx[:max_bytes]
            return data

    def _send(self, data: bytes) -> int:
        with self._lock:
            if self._closed:
                return -1
            try:
                return os.write(self._master, data)
            except (BlockingIOError, InterruptedError):
                return 0
            except OSError:
                return -1

    def inject(self, data: bytes) -> int:
        """Put raw bytes on the line towards the panel; returns how many were sent."""
        sent = 0
        while sent < len(data):
            n = self._send(data[sent:])
            if n <= 0:
                break
            sent += n
        return sent

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self._master, self._slave):
                with contextlib.suppress(OSError):
                    os.close(fd)


class BusChannel(osdp.Channel):  # type: ignore[misc]
    """One reader's libosdp channel on a :class:`PtyBus`. Never raises (the library calls it
    from inside its refresh)."""

    def __init__(self, bus: PtyBus) -> None:
        super().__init__()
        self._bus = bus
        self.rx = bytearray()
        self.cut = False
        """Cut off the bus: hears nothing, sends nothing."""

    def read(self, max_bytes: int) -> bytes:
        return self._bus._take(self, max_bytes)

    def write(self, buf: bytes) -> int:
        if self.cut:
            return len(buf)
        sent = self._bus.inject(bytes(buf))
        return len(buf) if sent == len(buf) else -1

    def flush(self) -> None:
        self._bus._take(self, len(self.rx))


__all__ = ["BusChannel", "PtyBus"]

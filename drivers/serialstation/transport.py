"""Event-loop byte transport over a file descriptor (a serial port, a pty, a socket).

The loop watches the descriptor with ``add_reader`` / ``add_writer``; nothing blocks and
no thread is started. :func:`open_serial` opens a port with pyserial (a device path or any
pyserial URL whose port object exposes a file descriptor, such as ``socket://host:port``)
and wraps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
from collections.abc import Callable

import serial

DataCallback = Callable[[bytes], None]
LostCallback = Callable[[Exception | None], None]
READ_SIZE = 65536


class FdTransport:
    """Moves bytes between a non-blocking descriptor and callbacks.

    ``read()`` returns what is available (``b""`` when nothing is), ``write(data)`` returns
    how many bytes were taken; both raise ``OSError`` (or a library error listed in
    ``errors``) when the link is gone, which ends the transport with ``on_lost(exc)``.
    ``on_lost(None)`` is never called: :meth:`close` ends quietly.
    """

    def __init__(
        self,
        *,
        fileno: int,
        read: Callable[[], bytes],
        write: Callable[[bytes], int],
        close: Callable[[], None],
        on_data: DataCallback,
        on_lost: LostCallback,
        errors: tuple[type[Exception], ...] = (OSError,),
    ) -> None:
        self._fd = fileno
        self._read = read
        self._write = write
        self._close = close
        self._on_data = on_data
        self._on_lost = on_lost
        self._errors = errors
        self._loop = asyncio.get_running_loop()
        self._out = bytearray()
        self._writing = False
        self._closed = False
        self._drained: asyncio.Future[None] | None = None
        self._loop.add_reader(self._fd, self._readable)

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, data: bytes) -> None:
        """Queue ``data``; it is written as fast as the descriptor accepts it."""
        if self._closed:
            raise ConnectionError("transport is closed")
        self._out += data
        if not self._writing:
            self._flush()

    async def drain(self) -> None:
        """Wait until every queued byte was handed to the descriptor."""
        if self._out and not self._closed:
            if self._drained is None:
                self._drained = self._loop.create_future()
            await asyncio.shield(self._drained)

    def close(self) -> None:
        """Stop watching the descriptor and close it. Idempotent."""
        self._shutdown(None, notify=False)

    def _readable(self) -> None:
        try:
            data = self._read()
        except self._errors as exc:
            self._shutdown(exc, notify=True)
            return
        if data:
            self._on_data(data)

    def _flush(self) -> None:
        try:
            while self._out:
                _, ready, _ = select.select([], [self._fd], [], 0)
                n = self._write(bytes(self._out)) if ready else 0
                if not n:
                    if not self._writing:
                        self._loop.add_writer(self._fd, self._flush)
                        self._writing = True
                    return
                del self._out[:n]
        except self._errors as exc:
            self._shutdown(exc, notify=True)
            return
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        self._wake_drain()

    def _wake_drain(self, exc: Exception | None = None) -> None:
        if self._drained is not None and not self._drained.done():
            if exc is None:
                self._drained.set_result(None)
            else:
                self._drained.set_exception(exc)
                self._drained.exception()
        self._drained = None

    def _shutdown(self, exc: Exception | None, *, notify: bool) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._fd)
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        self._out.clear()
        self._wake_drain(ConnectionError("transport closed") if exc or notify else None)
        with contextlib.suppress(*self._errors):
            self._close()
        if notify:
            self._on_lost(exc)


def open_serial(
    port: str,
    *,
    baudrate: int,
    on_data: DataCallback,
    on_lost: LostCallback,
) -> FdTransport:
    """Open ``port`` at ``baudrate`` 8N1 without flow control, discard stale input and wrap
    it. Raises ``serial.SerialException`` or ``OSError`` when it cannot be opened, and
    ``ValueError`` when the port object has no file descriptor to watch."""
    if "://" in port:
        ser = serial.serial_for_url(port, baudrate=baudrate, timeout=0, write_timeout=0)
    else:
        ser = serial.Serial(
            port,
            baudrate=baudrate,
            bytesize=serial.EIGHTBITS,
            parity=serial.PARITY_NONE,
            stopbits=serial.STOPBITS_ONE,
            timeout=0,
            write_timeout=0,
            exclusive=True,
        )
    try:
        fileno = ser.fileno()
    except (AttributeError, OSError, serial.SerialException) as exc:
        ser.close()
        raise ValueError(f"port: {port!r} does not expose a file descriptor ({exc})") from None
    try:
        ser.reset_input_buffer()
        return FdTransport(
            fileno=fileno,
            read=lambda: ser.read(READ_SIZE),
            write=lambda data: ser.write(data) or 0,
            close=ser.close,
            on_data=on_data,
            on_lost=on_lost,
            errors=(OSError, serial.SerialException),
        )
    except BaseException:
        ser.close()
        raise

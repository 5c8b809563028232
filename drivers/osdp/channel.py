"""The serial line under the OSDP library: a pyserial port behind libosdp's ``Channel``.

The library calls these methods from its refresh thread and expects them never to block for
long and never to raise (an exception inside its refresh would end the thread). So every
error is caught, remembered in :attr:`SerialChannel.error` for the driver to report, and
turned into "nothing read" or "packet dropped".
"""

from __future__ import annotations

import logging
import threading

import osdp
import serial

log = logging.getLogger(__name__)

WRITE_TIMEOUT_S = 0.25


def open_port(url: str, baudrate: int) -> serial.Serial:
    """Open the serial device (or pyserial URL) non-blocking for reads, 8N1."""
    port = serial.serial_for_url(
        url, baudrate=baudrate, timeout=0, write_timeout=WRITE_TIMEOUT_S, do_not_open=True
    )
    if "://" not in url:
        port.exclusive = True  # a second panel on the same bus would garble every frame
    port.open()
    return port


class SerialChannel(osdp.Channel):  # type: ignore[misc]
    """A libosdp channel over an open pyserial port, counting bytes and remembering errors."""

    def __init__(self, port: serial.Serial) -> None:
        super().__init__()
        self._port = port
        self._lock = threading.Lock()
        self.bytes_in = 0
        self.bytes_out = 0
        self.error: str | None = None
        """The last error of the port (None while it works)."""

    def _fail(self, what: str, exc: BaseException) -> None:
        message = f"serial port {self._port.port}: {what} failed: {exc}"
        if message != self.error:
            log.error("%s", message)
        self.error = message

    def read(self, max_bytes: int) -> bytes:
        try:
            with self._lock:
                data = self._port.read(max_bytes)
        except Exception as exc:
            self._fail("read", exc)
            return b""
        self.bytes_in += len(data)
        self.error = None if data else self.error
        return bytes(data)

    def write(self, buf: bytes) -> int:
        try:
            with self._lock:
                written = self._port.write(buf)
        except Exception as exc:
            self._fail("write", exc)
            return -1
        self.bytes_out += written or 0
        return len(buf) if written == len(buf) else -1

    def flush(self) -> None:
        try:
            with self._lock:
                self._port.reset_input_buffer()
        except Exception as exc:
            self._fail("flush", exc)

    def close(self) -> None:
        with self._lock:
            self._port.close()


__all__ = ["SerialChannel", "open_port"]

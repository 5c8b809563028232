"""Simulated UHPPOTE controllers on the wire: one UDP socket and one TCP listener, same port.

A request packet goes to the controller whose serial number it names (a GET_CONTROLLER for
serial 0 is answered by every controller, as a broadcast search is); a request for a serial
number nobody has, or one that is not protocol, gets no reply and is logged with the reason.
Events go from the UDP socket to each controller's listener address, as a real controller
sends them from its port 60000.

Transport faults (:class:`Faults`) act on the replies: drop them, delay them, or spoil them
(short, wrong start byte, wrong function, wrong serial number, random bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from collections import deque
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from simulators.uhppote.controller import UhppoteController
from simulators.uhppote.packets import PACKET_SIZE, Function, PacketError, parse_request

log = logging.getLogger(__name__)

Malformed = Literal["short", "som", "function", "serial", "garbage"]
MALFORMED_KINDS: tuple[Malformed, ...] = ("short", "som", "function", "serial", "garbage")


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request the server received, for tests and benches."""

    serial: int
    function: str
    argument: int
    """The uint32 at offset 8 (card number, event index, ...)."""
    transport: Literal["udp", "tcp"]


@dataclass
class Faults:
    drop: int = 0
    """Replies still to drop (-1: every reply)."""
    delay_s: float = 0.0
    """Every reply is sent this late."""
    malformed: Malformed | None = None
    malformed_count: int = 0
    """Replies still to spoil the ``malformed`` way (-1: every reply)."""

    def clear(self) -> None:
        self.drop = 0
        self.delay_s = 0.0
        self.malformed = None
        self.malformed_count = 0


def spoil(packet: bytes, how: Malformed) -> bytes:
    """``packet`` made invalid the ``how`` way."""
    if how == "short":
        return packet[:20]
    if how == "som":
        return bytes([0x18]) + packet[1:]
    if how == "function":
        return packet[:1] + bytes([packet[1] ^ 0x01]) + packet[2:]
    if how == "serial":
        serial = struct.unpack_from("<I", packet, 4)[0]
        return packet[:4] + struct.pack("<I", (serial + 1) & 0xFFFF_FFFF) + packet[8:]
    return os.urandom(PACKET_SIZE)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: UhppoteServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.server._received_udp(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.info("uhppote simulator: UDP error: %s", exc)


class UhppoteServer:
    """Serves ``controllers`` on ``host:port`` over UDP and, with ``tcp``, over TCP.

    ``port`` 0 picks a free port (the same number for both); :attr:`port` tells which."""

    def __init__(
        self,
        controllers: Iterable[UhppoteController],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tcp: bool = True,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port: must be in 0..65535, got {port}")
        self.controllers: dict[int, UhppoteController] = {}
        for controller in controllers:
            if controller.serial in self.controllers:
                raise ValueError(f"serial: {controller.serial} appears twice")
            self.controllers[controller.serial] = controller
            controller.on_event = self._send_event
        if not self.controllers:
            raise ValueError("controllers: at least one controller")
        self.host = host
        self._port = port
        self.tcp = tcp
        self.faults = Faults()
        self.requests: deque[LoggedRequest] = deque(maxlen=1_000_000)
        self.rejected: list[str] = []
        """Why each request that got no answer was refused (most recent last)."""
        self.events_sent = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        if self._udp is None:
            raise RuntimeError("the port is known once the server is started")
        return self._port

    def describe(self) -> dict[str, object]:
        return {
            "host": self.host,
            "port": self.port,
            "transports": ["udp", "tcp"] if self.tcp else ["udp"],
            "controllers": sorted(self.controllers),
        }

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        if self._udp is not None:
            return
        loop = asyncio.get_running_loop()
        attempts = 5 if self._port == 0 else 1
        for attempt in range(attempts):
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(self.host, self._port)
            )
            port = int(udp.get_extra_info("sockname")[1])
            if not self.tcp:
                break
            try:
                self._tcp = await asyncio.start_server(self._on_tcp, self.host, port)
                break
            except OSError:
                udp.close()
                if attempt == attempts - 1:
                    raise
        self._udp = udp
        self._port = port
        log.info("uhppote simulator serving %s:%d (%s)", self.host, port, self.describe())

    async def close(self) -> None:
        """Stop serving and release the port. Idempotent."""
        udp, self._udp = self._udp, None
        tcp, self._tcp = self._tcp, None
        if tcp is not None:
            tcp.close()
        for writer in list(self._writers):
            writer.close()  # its handler sees the end of the stream and returns
        handlers = [t for t in self._tasks if t.get_name() == "uhppote-sim-tcp"]
        if handlers:
            await asyncio.wait(handlers, timeout=1.0)
        for task in list(self._tasks):
            if not task.done():
                task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if tcp is not None:
            await tcp.wait_closed()
        if udp is not None:
            udp.close()

    async def __aenter__(self) -> UhppoteServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ requests

    def answer(self, data: bytes, transport: Literal["udp", "tcp"] = "udp") -> list[bytes]:
        """The replies to one request packet, faults applied (no I/O)."""
        try:
            request = parse_request(data)
        except PacketError as exc:
            return self._refuse(f"request {exc}")
        argument = struct.unpack_from("<I", data, 8)[0]
        self.requests.append(
            LoggedRequest(request.serial, request.function.name, argument, transport)
        )
        if request.function is Function.GET_CONTROLLER and request.serial == 0:
            targets = list(self.controllers.values())
        else:
            target = self.controllers.get(request.serial)
            if target is None:
                return self._refuse(f"no controller with serial number {request.serial}")
            targets = [target]
        replies: list[bytes] = []
        for controller in targets:
            try:
                reply = controller.handle(request)
            except PacketError as exc:
                self._refuse(f"{request.function.name} to {controller.serial}: {exc}")
                continue
            if reply is not None:
                replies.append(reply)
        return [r for r in (self._faulty(r) for r in replies) if r is not None]

    def _refuse(self, reason: str) -> list[bytes]:
        log.info("uhppote simulator: no reply: %s", reason)
        self.rejected.append(reason)
        del self.rejected[:-100]
        return []

    def _faulty(self, reply: bytes) -> bytes | None:
        f = self.faults
        if f.drop:
            f.drop = f.drop - 1 if f.drop > 0 else -1
            return None
        if f.malformed is not None and f.malformed_count:
            f.malformed_count = f.malformed_count - 1 if f.malformed_count > 0 else -1
            reply = spoil(reply, f.malformed)
            if f.malformed_count == 0:
                f.malformed = None
        return reply

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _received_udp(self, data: bytes, addr: tuple[str, int]) -> None:
        replies = self.answer(data, "udp")
        if not replies:
            return
        if self.faults.delay_s > 0:
            self._spawn(self._send_later(replies, addr, self.faults.delay_s), "uhppote-sim-delay")
            return
        for reply in replies:
            self._sendto(reply, addr)

    async def _send_later(self, replies: list[bytes], addr: tuple[str, int], delay: float) -> None:
        await asyncio.sleep(delay)
        for reply in replies:
            self._sendto(reply, addr)

    def _sendto(self, packet: bytes, addr: tuple[str, int]) -> None:
        if self._udp is not None and not self._udp.is_closing():
            self._udp.sendto(packet, addr)

    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        task.set_name("uhppote-sim-tcp")
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while True:
                data = await reader.readexactly(PACKET_SIZE)
                replies = self.answer(data, "tcp")
                if self.faults.delay_s > 0:
                    await asyncio.sleep(self.faults.delay_s)
                for reply in replies[:1]:
                    writer.write(reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    # ------------------------------------------------------------------ events

    def _send_event(self, packet: bytes, listener: tuple[str, int]) -> None:
        self.events_sent += 1
        self._sendto(packet, listener)

    def send_raw(self, packet: bytes, listener: tuple[str, int]) -> None:
        """Send arbitrary bytes to a listener (a test of the listener's input checks)."""
        self._sendto(packet, listener)


__all__ = ["MALFORMED_KINDS", "Faults", "LoggedRequest", "Malformed", "UhppoteServer", "spoil"]

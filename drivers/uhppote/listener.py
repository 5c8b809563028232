"""The UDP socket on which controllers push their events to the gateway.

A controller sends every new event, as soon as it is recorded, to the listener address set
with SET_LISTENER. One site usually points all its controllers at one gateway address, so one
:class:`EventListener` per bound address is shared by the drivers of every controller there
(reference counted: the socket closes with the last driver) and hands each packet to the
driver of the serial number it names.

Packets are decoded by the ``uhppoted`` codec (:func:`uhppoted.decode.event`); the socket is
this module's own because the library's ``listen`` neither tells which port it bound (port 0
in tests) nor says why it drops a packet. Every packet refused here is logged with the reason:
wrong length, not an event, a serial number no driver here serves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, ClassVar

from uhppoted import decode

log = logging.getLogger(__name__)

EventHandler = Callable[[Any], None]
"""Called with a decoded :class:`uhppoted.structs.Event`."""


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, listener: EventListener) -> None:
        self.listener = listener

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.listener.received(data, f"{addr[0]}:{addr[1]}")

    def error_received(self, exc: Exception) -> None:
        log.info("event listener: %s", exc)


class EventListener:
    """A bound UDP socket dispatching event packets to the driver of each serial number."""

    _shared: ClassVar[dict[tuple[int, str, int], EventListener]] = {}

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.rejected = 0
        self.received_events = 0
        self._handlers: dict[int, EventHandler] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._users = 0
        self._key: tuple[int, str, int] | None = None

    @classmethod
    async def acquire(cls, host: str, port: int) -> EventListener:
        """The listener bound to ``host:port``, bound now if nobody holds it (port 0: a new
        socket on a free port)."""
        loop = asyncio.get_running_loop()
        key = (id(loop), host, port)
        listener = cls._shared.get(key) if port else None
        if listener is None:
            listener = cls(host, port)
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(listener), local_addr=(host, port)
            )
            listener._transport = transport
            listener.port = int(transport.get_extra_info("sockname")[1])
            if port:
                listener._key = key
                cls._shared[key] = listener
        listener._users += 1
        return listener

    def release(self) -> None:
        """One user less; the socket closes with the last."""
        self._users -= 1
        if self._users > 0:
            return
        if self._key is not None:
            self._shared.pop(self._key, None)
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def subscribe(self, serial: int, handler: EventHandler) -> None:
        if serial in self._handlers:
            raise ValueError(
                f"serial: controller {serial} already has a driver listening on "
                f"{self.host}:{self.port}"
            )
        self._handlers[serial] = handler

    def unsubscribe(self, serial: int) -> None:
        self._handlers.pop(serial, None)

    def received(self, data: bytes, sender: str) -> None:
        if len(data) != 64:
            self._reject(sender, f"{len(data)} bytes, an event is 64")
            return
        try:
            event = decode.event(data)
        except ValueError as exc:
            self._reject(sender, str(exc))
            return
        handler = self._handlers.get(event.controller)
        if handler is None:
            self._reject(sender, f"event from controller {event.controller}, not served here")
            return
        self.received_events += 1
        handler(event)

    def _reject(self, sender: str, reason: str) -> None:
        self.rejected += 1
        log.warning(
            "event listener %s:%d: rejected a packet from %s: %s",
            self.host,
            self.port,
            sender,
            reason,
        )


__all__ = ["EventHandler", "EventListener"]

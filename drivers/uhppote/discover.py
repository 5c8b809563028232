"""Find UHPPOTE controllers: one GET_CONTROLLER request to serial number 0 sent to a broadcast
(or any) address, and every controller that answers within the time limit.

The request and the replies are the ``uhppoted`` library's (its UDP transport and codec); each
reply is decoded on its own, so one that is not protocol (short, wrong start byte or function)
is dropped with a logged reason and does not hide the others.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from datetime import date

from uhppoted import decode, encode
from uhppoted.udp_async import UDPAsync

from drivers.base import DeviceUnavailable

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "255.255.255.255:60000"


@dataclass(frozen=True, slots=True)
class FoundController:
    """A controller that answered: its serial number and network settings."""

    serial: int
    address: str
    netmask: str
    gateway: str
    mac: str
    firmware: str
    released: date | None

    def as_dict(self) -> dict[str, object]:
        return {
            "serial": self.serial,
            "address": self.address,
            "netmask": self.netmask,
            "gateway": self.gateway,
            "mac": self.mac,
            "firmware": self.firmware,
            "released": self.released.isoformat() if self.released else None,
        }


def _address(value: str, name: str) -> str:
    host, sep, port = value.strip().rpartition(":")
    if not sep:
        host, port = value.strip(), "60000"
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise ValueError(f"{name}: {host!r} is not an IPv4 address") from None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{name}: {port!r} is not a port number")
    return f"{host}:{port}"


def check_search(address: str, bind: str, timeout_s: float) -> str:
    """The ``host:port`` a search goes to; ``ValueError`` naming ``address``, ``bind`` or
    ``timeout_s`` for a bad value."""
    target = _address(address, "address")
    try:
        ipaddress.IPv4Address(bind)
    except ValueError:
        raise ValueError(f"bind: {bind!r} is not an IPv4 address") from None
    if not 0 < timeout_s <= 60:
        raise ValueError(f"timeout_s: must be more than 0 and at most 60 s, got {timeout_s}")
    return target


async def discover(
    address: str = DEFAULT_ADDRESS, *, bind: str = "0.0.0.0", timeout_s: float = 2.5
) -> list[FoundController]:
    """Every controller answering a search sent to ``address`` (``host[:port]``, default the
    broadcast address of port 60000) from ``bind``, sorted by serial number.

    Raises ``ValueError`` naming ``address``, ``bind`` or ``timeout_s`` for a bad value and
    :class:`~drivers.base.DeviceUnavailable` when the request cannot be sent."""
    target = check_search(address, bind, timeout_s)
    udp = UDPAsync(bind=bind, broadcast=target, listen="0.0.0.0:0")
    try:
        replies = await udp.broadcast(encode.get_controller_request(0), timeout=timeout_s)
    except (OSError, RuntimeError) as exc:
        raise DeviceUnavailable(f"search sent to {target} failed: {exc}") from None
    found: dict[int, FoundController] = {}
    for packet in replies:
        try:
            reply = decode.get_controller_response(packet)
        except ValueError as exc:
            log.warning("search of %s: dropped a reply that is not protocol: %s", target, exc)
            continue
        serial = int(reply.controller)
        if serial == 0 or serial in found:
            log.warning("search of %s: dropped a reply naming controller %d again", target, serial)
            continue
        found[serial] = FoundController(
            serial=serial,
            address=str(reply.ip_address),
            netmask=str(reply.subnet_mask),
            gateway=str(reply.gateway),
            mac=str(reply.mac_address),
            firmware=str(reply.version),
            released=reply.date,
        )
    await asyncio.sleep(0)
    return [found[s] for s in sorted(found)]


__all__ = ["DEFAULT_ADDRESS", "FoundController", "check_search", "discover"]

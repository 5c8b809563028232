"""Requests to one UHPPOTE controller through the ``uhppoted`` async API.

:class:`UhppoteLink` calls :class:`uhppoted.uhppote_async.UhppoteAsync` with the controller
given as ``(serial, "host:port", "udp"|"tcp")``, retries a request that got no valid answer,
checks that each reply comes from the controller asked, counts the packets sent, and turns
every library error into the driver contract's errors:

* no reply within ``timeout_s`` after every retry: :class:`~drivers.base.DeviceTimeout`; when
  the address then answers a search (serial number 0) as another controller, the message says
  so (a replaced controller);
* a reply that is not protocol (wrong start byte or function code; the library drops packets
  that are not 64 bytes long, which then count as no reply) or that names another serial
  number: logged with the reason, retried, and finally :class:`~drivers.base.ProtocolError`;
* socket errors: :class:`~drivers.base.DeviceUnavailable`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Literal

from uhppoted.uhppote_async import UhppoteAsync

from drivers.base import DeviceTimeout, DeviceUnavailable, DriverError, ProtocolError

log = logging.getLogger(__name__)

Transport = Literal["udp", "tcp"]


@dataclass(frozen=True, slots=True)
class LinkSettings:
    serial: int
    address: str
    """``host:port`` of the controller."""
    transport: Transport = "udp"
    bind: str = "0.0.0.0"
    timeout_s: float = 1.0
    retries: int = 2


def _raise_if_cancelled() -> None:
    """Raise the cancellation of the running task that ``uhppoted`` may have swallowed.

    The library waits for replies with ``asyncio.wait_for``, which on Python 3.11 returns the
    reply instead of raising when the task is cancelled just as the reply arrives; the task's
    pending cancellation count still says so (``Task.cancelling``)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class UhppoteLink:
    """Request/response with one controller; :attr:`requests` counts the packets sent."""

    def __init__(self, settings: LinkSettings, *, device_id: str | None = None) -> None:
        self.settings = settings
        self.device_id = device_id
        self.requests = 0
        self.rejected = 0
        """Replies refused (not protocol, or from another controller)."""
        self._api = UhppoteAsync(bind=settings.bind)
        self._target = (settings.serial, settings.address, settings.transport)
        self.closed = True
        """While True (before the driver's open, after its close) every call raises
        :class:`~drivers.base.DeviceUnavailable` without sending anything."""

    @property
    def name(self) -> str:
        return self.device_id or f"controller {self.settings.serial}"

    async def call(self, what: str, function: str, *args: Any) -> Any:
        """Send ``function(controller, *args)`` of the uhppoted API; return its decoded reply.

        ``what`` names the request in errors and logs."""
        s = self.settings
        if self.closed:
            raise DeviceUnavailable(
                f"{self.name}: the driver is closed ({what} not sent)", device_id=self.device_id
            )
        failure: DriverError | None = None
        for attempt in range(s.retries + 1):
            self.requests += 1
            try:
                reply = await getattr(self._api, function)(self._target, *args, timeout=s.timeout_s)
            except TimeoutError:
                _raise_if_cancelled()
                failure = DeviceTimeout(
                    f"{self.name}: no reply to {what} from {s.address} ({s.transport}) within "
                    f"{s.timeout_s:g} s, {attempt + 1} attempt(s)",
                    device_id=self.device_id,
                )
                continue
            except ValueError as exc:
                self.rejected += 1
                log.warning("%s: rejected the reply to %s: %s", self.name, what, exc)
                failure = ProtocolError(
                    f"{self.name}: the reply to {what} is not UHPPOTE protocol: {exc}",
                    device_id=self.device_id,
                    field="packet",
                )
                continue
            except (OSError, EOFError, RuntimeError) as exc:
                failure = DeviceUnavailable(
                    f"{self.name}: {what} to {s.address} ({s.transport}) failed: {exc}",
                    device_id=self.device_id,
                )
                continue
            _raise_if_cancelled()
            if reply is None:
                failure = DeviceTimeout(
                    f"{self.name}: no reply to {what}", device_id=self.device_id
                )
                continue
            serial = getattr(reply, "controller", s.serial)
            if serial != s.serial:
                self.rejected += 1
                log.warning(
                    "%s: rejected the reply to %s: it comes from controller %s, not %d",
                    self.name,
                    what,
                    serial,
                    s.serial,
                )
                failure = ProtocolError(
                    f"{self.name}: the reply to {what} names controller {serial}, "
                    f"expected {s.serial}",
                    device_id=self.device_id,
                    field="serial",
                )
                continue
            return reply
        assert failure is not None
        if isinstance(failure, DeviceTimeout):
            failure = await self._explain_silence(failure)
        raise failure

    async def _explain_silence(self, failure: DeviceTimeout) -> DeviceTimeout:
        """After a timeout: does the address answer as another controller?"""
        s = self.settings
        self.requests += 1
        try:
            found = await self._api.get_controller(
                (0, s.address, s.transport), timeout=min(s.timeout_s, 0.5)
            )
        except (TimeoutError, ValueError, OSError, EOFError, RuntimeError):
            _raise_if_cancelled()
            return failure
        _raise_if_cancelled()
        other = getattr(found, "controller", None)
        if other is None or other == s.serial:
            return failure
        log.warning("%s: %s answers as controller %s", self.name, s.address, other)
        return DeviceTimeout(
            f"{failure}; {s.address} answers as controller {other}: was the controller "
            f"replaced? (configured serial number {s.serial})",
            device_id=self.device_id,
        )


__all__ = ["LinkSettings", "Transport", "UhppoteLink"]

"""What every device worker shares: reaching the core, availability, reconnect with backoff.

Availability is about reachability. A device is *offline* while it cannot be reached
(:class:`~drivers.base.DeviceUnavailable`, including timeouts, or an OS error on its port);
a device that answers but refuses what it is asked (a verify mismatch, a refused commit, a
reply that is not the protocol) stays *online* and is in an *error state*, reported once when
it begins or changes (event ``device_error``) and once when it ends (``device_recovered``).
A persistent refusal therefore never makes the device's availability flap."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_random_exponential,
)

from drivers.base import DeviceUnavailable, DriverError
from gateway.core import Core
from gateway.store import device_records as sync_store
from gateway.sync.events import SyncSink

log = logging.getLogger(__name__)

T = TypeVar("T")


class CoreRunner(Protocol):
    """The running gateway as a worker sees it (see :class:`gateway.runtime.Gateway`)."""

    core: Core

    async def call(self, fn: Callable[..., T], *args: Any) -> T: ...


@dataclass(frozen=True)
class WorkerTiming:
    """Time limits of a device worker: first and longest reconnect delay (exponential with
    jitter in between), the limit of one device operation, and the idle poll interval."""

    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    timeout_s: float = 10.0
    poll_s: float = 1.0


class DeviceWorker:
    """Base of the per-device workers: one named task that connects, serves the device until
    the link fails, marks it offline with the reason, waits with exponential backoff and
    jitter, and connects again. ``stop()`` cancels and awaits the task."""

    role = "device"

    def __init__(
        self,
        runner: CoreRunner,
        device_id: str,
        sink: SyncSink,
        *,
        timing: WorkerTiming | None = None,
    ) -> None:
        self.runner = runner
        self.device_id = device_id
        self.sink = sink
        t = timing or WorkerTiming()
        self.timeout_s = t.timeout_s
        self.poll_s = t.poll_s
        self.retry_initial_s = t.retry_initial_s
        self._wait = wait_random_exponential(multiplier=t.retry_initial_s, max=t.retry_max_s)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.online = False
        self.last_error = ""
        self.error: str | None = None
        """The device's error state: why it refuses while it answers (None: no error)."""

    @property
    def core(self) -> Core:
        return self.runner.core

    def wake(self) -> None:
        """Something changed: look for work now instead of at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"lockgate-{self.role}-{self.device_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def serve(self) -> None:
        """Connect and serve the device until the link fails (raise DriverError)."""
        raise NotImplementedError

    async def _run(self) -> None:
        """Serve for ever: after a failure, again with exponential backoff and jitter; after
        the link ended normally, again after the first backoff step (the backoff starts
        afresh)."""
        while True:
            async for attempt in AsyncRetrying(
                wait=self._wait,
                retry=retry_if_exception_type(Exception),
                before_sleep=self._report_failure,
            ):
                with attempt:
                    await self.serve()
            await asyncio.sleep(self.retry_initial_s)

    async def _report_failure(self, state: RetryCallState) -> None:
        """Report why the last attempt failed (tenacity calls it before the backoff)."""
        exc = state.outcome.exception() if state.outcome is not None else None
        match exc:
            case DeviceUnavailable() | TimeoutError() | OSError():
                await self.set_online(False, f"{type(exc).__name__}: {exc}")
            case DriverError():
                # It answered: reachable, but refusing. Retried with backoff, still online.
                await self.set_online(True, "connected")
                await self.set_error(f"{type(exc).__name__}: {exc}")
            case _:
                log.error("worker of %s failed", self.device_id, exc_info=exc)
                await self.set_online(False, f"internal error: {type(exc).__name__}")

    async def _sleep_or_wake(self, seconds: float, *, wake: bool = True) -> None:
        if not wake:
            await asyncio.sleep(seconds)
            return
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    async def set_online(
        self, online: bool, reason: str, info: dict[str, Any] | None = None
    ) -> None:
        """Record and report the device's availability (only changes are reported)."""
        self.online = online
        if not online:
            self.last_error = reason

        def record(s: Session) -> None:
            changed = sync_store.set_device_status(
                s, self.device_id, self.role, online, reason, self.core.clock(), info
            )
            if changed:
                self.sink.availability(s, self.device_id, online, reason)

        try:
            await self.runner.call(self.core.transaction, record)
        except Exception:
            log.exception("could not record the availability of %s", self.device_id)
        level = logging.INFO if online else logging.WARNING
        log.log(
            level, "device %s %s: %s", self.device_id, "online" if online else "offline", reason
        )

    async def set_error(self, error: str | None) -> None:
        """Record and report the device's error state (only changes are reported)."""
        if error == self.error:
            return
        previous, self.error = self.error, error
        if error is None:
            kind, body = "device_recovered", {"device": self.device_id, "error": previous}
            log.info("device %s recovered from: %s", self.device_id, previous)
        else:
            kind, body = "device_error", {"device": self.device_id, "error": error}
            log.warning("device %s refuses: %s", self.device_id, error)

        def record(s: Session) -> None:
            self.sink.event(s, kind, body)

        try:
            await self.runner.call(self.core.transaction, record)
        except Exception:
            log.exception("could not record the error state of %s", self.device_id)

    async def guarded(self, what: str, op: Awaitable[T], *, timeout_s: float | None = None) -> T:
        """Await a device operation with the worker's time limit (or ``timeout_s``)."""
        limit = timeout_s or self.timeout_s
        try:
            async with asyncio.timeout(limit):
                return await op
        except TimeoutError:
            raise TimeoutError(f"{what} did not finish within {limit:g} s") from None

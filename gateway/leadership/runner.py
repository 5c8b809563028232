"""``CoreLeadership``: the loop of ``lockgate run --role core``.

An instance is a **standby** until it holds the lease: it keeps no broker connection (only one
connection can hold the gateway's MQTT client id and its persistent session, and taking it
would disconnect the leader) and runs no service; every ``renew_s`` it tries to take the
lease (or just after the lease it saw ends, if sooner), which it gets once the leader's lease
has expired (``lease_s`` after its last renewal) or was released. A standby takes the store's
write lock only when the lease is free: it costs the leader nothing but a read per
``renew_s``.

With the lease (a new fencing token) it becomes the **leader**: it builds the gateway with
the token on its store (:meth:`gateway.store.database.Database.set_fence`), starts it (the
core loads the site, the bridge takes over the MQTT session and receives what the broker
queued for it, including requests the old leader had received and not acknowledged), reports
the takeover (``on_elected``: a log line and a ``leader_elected`` event) and renews the lease
every ``renew_s``.

It **steps down** — stops the gateway (the bridge disconnects, unacknowledged requests stay
with the broker for the next leader) and becomes a standby again — as soon as any of these
happens:

- a renewal finds another token on the lease (another instance took it over);
- no renewal succeeded for ``lease_s`` (measured on this machine's monotonic clock from the
  moment the last successful renewal was sent, so this instance gives up no later than the
  database lets another take over; a process that was frozen notices at once when it thaws);
- a write transaction was refused because its fencing token is no longer the lease's.

A graceful stop (SIGTERM) stops the gateway first and then releases the lease, so a standby
takes over within ``renew_s``.

SQLite has one writer process: :meth:`CoreLeadership.always_leader` runs the gateway with no
lease and no fence (token 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Literal, TypeVar

from gateway.leadership.lease import LeaseStore, LeaseView
from gateway.runtime import Gateway, cancel_and_wait
from gateway.store.fencing import Fence

log = logging.getLogger(__name__)

T = TypeVar("T")

STOP_TIMEOUT_S = 15.0
"""How long a gateway may take to stop before the tasks still running are logged."""

State = Literal["standby", "starting", "leader", "stopping", "stopped"]


@dataclass(frozen=True)
class Takeover:
    """How this instance became the leader."""

    token: int
    """The fencing token of this leadership (0: SQLite, always the leader)."""
    instance: str
    """This instance (32 hex digits; also its ``instance`` on the bridge state topic)."""
    host: str
    """This instance's host and process id, for people."""
    previous_instance: str | None
    """The instance that held the lease before, if any."""
    previous_host: str | None
    standby_s: float
    """How long this instance waited as a standby before taking the lease."""
    console_url: str | None = None
    """This instance's console URL as the lease records it (``None``: no console, or no
    URL known)."""


GatewayFactory = Callable[[Fence | None, str], Gateway]
"""Builds the gateway a leader runs: its store fenced with the given fence (None on SQLite),
its bridge identified by the given instance."""

OnElected = Callable[[Gateway, Takeover], Awaitable[None]]
"""Called once the leader's gateway has started (reports the takeover)."""


class CoreLeadership:
    """Stand by, lead, step down (see the module docstring). Build it with
    :func:`gateway.compose.build_core_role`; run it with :meth:`run`."""

    def __init__(
        self,
        factory: GatewayFactory,
        *,
        lease: LeaseStore | None,
        renew_s: float,
        on_elected: OnElected | None = None,
        instance: str | None = None,
    ) -> None:
        if renew_s <= 0:
            raise ValueError("renew_s: must be positive")
        self.factory = factory
        self.lease = lease
        self.renew_s = renew_s
        self.lease_s = lease.lease_s if lease is not None else 0.0
        self.on_elected = on_elected
        self.instance = instance or uuid.uuid4().hex
        self.host = f"{socket.gethostname()} pid {os.getpid()}"
        self.console_url: str | None = None
        """The base URL of this instance's web console, written to the lease when it takes
        it (set by :class:`gateway.web.corerole.CoreConsole` once it listens; None without a
        console or a known address)."""
        self.state: State = "standby"
        self.token: int | None = None
        """The fencing token while leading."""
        self.gateway: Gateway | None = None
        """The running gateway while leading."""
        self.seen: LeaseView | None = None
        """The lease as this instance last read, took or renewed it (who leads, for the
        console of a standby)."""
        self.step_down_reason: str | None = None
        self._lost: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._asked_at = 0.0
        self._deadline = 0.0

    @classmethod
    def always_leader(
        cls, factory: GatewayFactory, *, on_elected: OnElected | None = None
    ) -> CoreLeadership:
        """The single core of an SQLite store: leads at once, with no lease and no fence."""
        return cls(factory, lease=None, renew_s=1.0, on_elected=on_elected)

    def leading(self) -> bool:
        """Whether this instance may act as the leader right now: it holds the lease, has not
        lost it, and its last renewal is recent enough. The bridge asks before every
        connection to the broker, so a deposed or thawed leader never takes the gateway's
        MQTT session back from the new leader."""
        lost = self._lost
        return lost is not None and not lost.is_set() and time.monotonic() < self._deadline

    # ------------------------------------------------------------------ the loop

    async def run(self, stop: asyncio.Event) -> None:
        """Stand by and lead, over and over, until ``stop`` is set; then stop the gateway
        and release the lease. A gateway that fails to start is logged and stopped, and the
        instance stands by again (after ``lease_s``, to let another instance try)."""
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lockgate-lease")
        try:
            while not stop.is_set():
                takeover = await self._stand_by(stop)
                if takeover is None:
                    break
                failed = await self._lead(takeover, stop)
                if failed and not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), max(self.lease_s, 1.0))
        finally:
            self.state = "stopped"
            executor, self._executor = self._executor, None
            executor.shutdown(wait=True)
            if self.lease is not None:
                self.lease.dispose()

    async def _db(self, fn: Callable[..., T], *args: object) -> T:
        assert self._loop is not None
        assert self._executor is not None
        return await self._loop.run_in_executor(self._executor, partial(fn, *args))

    async def _stand_by(self, stop: asyncio.Event) -> Takeover | None:
        """Wait for the lease; the takeover, or None once ``stop`` is set."""
        self.state = "standby"
        lease = self.lease
        started = time.monotonic()
        if lease is None:
            return Takeover(0, self.instance, self.host, None, None, 0.0, self.console_url)
        seen: tuple[str, int] | None = None
        failing = False
        while not stop.is_set():
            pause = self.renew_s
            try:
                before = self.seen = await self._db(lease.read)
                won = None
                # Taking the lease takes the store's write lock: only try when it is free.
                if before is None or before.expired or before.holder == self.instance:
                    self._asked_at = time.monotonic()
                    won = await self._db(lease.acquire, self.instance, self.host, self.console_url)
            except Exception as exc:
                if not failing:
                    log.warning("standby: the lease cannot be read or taken now (%s)", exc)
                failing = True
            else:
                failing = False
                if won is not None:
                    return self._took(won, before, time.monotonic() - started)
                if before is not None and not before.expired:
                    # Try again at the next renew_s, or just after the lease ends if sooner.
                    left = (before.expires_at - before.now).total_seconds()
                    pause = min(self.renew_s, left + 0.02)
                if before is not None and (before.holder, before.token) != seen:
                    seen = (before.holder, before.token)
                    log.info(
                        "standing by: the leader is instance %s (%s, token %d, console %s), "
                        "lease ends in %.1f s",
                        before.holder,
                        before.host,
                        before.token,
                        before.console_url or "unknown",
                        (before.expires_at - before.now).total_seconds(),
                        extra={
                            "role": "standby",
                            "leader": before.holder,
                            "token": before.token,
                            "leader_url": before.console_url,
                        },
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
        return None

    def _took(self, won: LeaseView, before: LeaseView | None, waited: float) -> Takeover:
        self.seen = won
        previous = before if before is not None and before.holder != self.instance else None
        return Takeover(
            token=won.token,
            instance=self.instance,
            host=self.host,
            previous_instance=previous.holder if previous else None,
            previous_host=previous.host if previous else None,
            standby_s=round(waited, 3),
            console_url=won.console_url,
        )

    async def _lead(self, takeover: Takeover, stop: asyncio.Event) -> bool:
        """Run the gateway while the lease holds; True when it failed to start."""
        assert self._loop is not None
        loop = self._loop
        self.state = "starting"
        self.token = takeover.token
        self.step_down_reason = None
        lost = self._lost = asyncio.Event()
        # The lease was granted no earlier than it was asked for: count its time from there,
        # with a margin so that this instance gives up before the database lets another in.
        deadline = self._asked_at + self.lease_s - self.renew_s * 0.5
        self._deadline = deadline if self.lease is not None else float("inf")

        def fenced() -> None:  # on the core thread
            loop.call_soon_threadsafe(self._fenced)

        fence = Fence(takeover.token, on_fenced=fenced) if self.lease is not None else None
        log.info(
            "became the leader (token %d)%s",
            takeover.token,
            f", taking over from instance {takeover.previous_instance} ({takeover.previous_host})"
            if takeover.previous_instance
            else "",
            extra={"role": "leader", "token": takeover.token, "instance": self.instance},
        )
        renewer = (
            asyncio.create_task(self._renew(takeover.token, deadline), name="lockgate-lease-renew")
            if self.lease is not None
            else None
        )
        gateway: Gateway | None = None
        failed = False
        try:
            gateway = self.factory(fence, self.instance)
            self.gateway = gateway
            await gateway.start()
            if not lost.is_set():
                self.state = "leader"
                if self.on_elected is not None:
                    await self.on_elected(gateway, takeover)
            stopped = asyncio.create_task(stop.wait(), name="lockgate-lease-stop")
            deposed = asyncio.create_task(lost.wait(), name="lockgate-lease-lost")
            try:
                await asyncio.wait([stopped, deposed], return_when=asyncio.FIRST_COMPLETED)
            finally:
                await cancel_and_wait(stopped)
                await cancel_and_wait(deposed)
        except Exception as exc:
            failed = not lost.is_set()
            if failed:
                log.error("the leader's gateway failed: %s", exc, exc_info=True)
        finally:
            self.state = "stopping"
            if lost.is_set():
                log.warning(
                    "stepping down (token %d): %s",
                    takeover.token,
                    self.step_down_reason,
                    extra={"role": "standby", "token": takeover.token},
                )
            if gateway is not None:
                await self._stop_gateway(gateway)
            self.gateway = None
            await cancel_and_wait(renewer)
            if self.lease is not None and not lost.is_set():
                try:
                    if await self._db(self.lease.release, takeover.token):
                        log.info("released the lease (token %d)", takeover.token)
                except Exception as exc:
                    log.warning("the lease could not be released (%s); it expires", exc)
            self.token = None
            self._lost = None
        return failed

    async def _stop_gateway(self, gateway: Gateway) -> None:
        stopping = asyncio.create_task(gateway.stop(), name="lockgate-lease-stop-gateway")
        done, _ = await asyncio.wait([stopping], timeout=STOP_TIMEOUT_S)
        if not done:
            stuck = [
                f"{t.get_name()}: {t.get_stack(limit=8)}"
                for t in asyncio.all_tasks()
                if not t.done() and t is not asyncio.current_task()
            ]
            log.error("the gateway has not stopped after %g s: %s", STOP_TIMEOUT_S, stuck)
        try:
            await stopping
        except Exception:
            log.exception("the gateway did not stop cleanly")

    # ------------------------------------------------------------------ keeping the lease

    def _lose(self, reason: str) -> None:
        lost = self._lost
        if lost is None or lost.is_set():
            return
        self.step_down_reason = reason
        lost.set()

    def _fenced(self) -> None:
        self._lose("a write was refused: another instance holds the lease (fenced out)")

    async def _renew(self, token: int, deadline: float) -> None:
        """Renew every ``renew_s``; lose the lead when the lease has another token or no
        renewal succeeded before ``deadline`` (monotonic)."""
        lease = self.lease
        assert lease is not None
        while True:
            now = time.monotonic()
            if now >= deadline:
                self._lose(f"no renewal of the {self.lease_s:g} s lease succeeded in time")
                return
            await asyncio.sleep(min(self.renew_s, deadline - now))
            if time.monotonic() >= deadline:
                self._lose(f"no renewal of the {self.lease_s:g} s lease succeeded in time")
                return
            sent = time.monotonic()
            try:
                renewed = await asyncio.wait_for(
                    self._db(lease.renew, token), timeout=max(0.01, deadline - sent)
                )
            except Exception as exc:
                log.warning("the lease could not be renewed (%s); retrying", exc)
                continue
            if renewed is None:
                self._lose("another instance took over the lease")
                return
            self.seen = renewed
            deadline = self._deadline = sent + self.lease_s - self.renew_s * 0.5


__all__ = ["CoreLeadership", "GatewayFactory", "OnElected", "Takeover"]

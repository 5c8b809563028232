"""The runtime every running part of lockgate shares: the running :class:`Gateway`, the
:class:`Service` protocol, :class:`PeriodicService` and :func:`cancel_and_wait`.

``Gateway`` runs a built :class:`~gateway.core.Core` and the background services it is given
(MQTT bridge, sync engine, periodic jobs, web console). The core is synchronous; it runs on one
dedicated worker thread (``lockgate-core``) so that the event loop never waits on the database,
and so that every change is applied in one order. Services reach it with :meth:`Gateway.call`.

Services are small objects with ``start(gateway)`` and ``stop()``; each names its background
tasks, and ``stop()`` cancels and awaits them. The gateway stops them in reverse order.

What is built, from which settings, is decided in one place: :mod:`gateway.compose`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from gateway.commands.context import CommandContext
from gateway.config import Settings
from gateway.core import Core
from gateway.rules.engine import Changes
from gateway.store import migrate

log = logging.getLogger(__name__)

T = TypeVar("T")


class Service(Protocol):
    """A part of the running gateway with a life cycle."""

    name: str

    async def start(self, gateway: Gateway) -> None:
        """Start background work; return once it runs."""

    async def stop(self) -> None:
        """Cancel and await every task this service started. Idempotent."""


ChangeObserver = Callable[[Changes], None]


CANCEL_AGAIN_S = 5.0
"""How long :func:`cancel_and_wait` waits for a cancelled task before cancelling it again."""


async def cancel_and_wait(task: asyncio.Task[Any] | None, again_s: float = CANCEL_AGAIN_S) -> None:
    """Cancel ``task`` (if any, and still running) and wait until it has ended.

    A task still running ``again_s`` after it was cancelled is cancelled again (and logged):
    Python 3.11's ``asyncio.wait_for``, which aiomqtt awaits every publication with, loses a
    cancellation that arrives as the awaited operation completes, and the task then runs on
    as if never cancelled."""
    if task is None:
        return
    task.cancel()
    while not (await asyncio.wait({task}, timeout=again_s))[0]:
        log.warning(
            "task %s still runs %g s after it was cancelled: cancelling it again",
            task.get_name(),
            again_s,
        )
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


_COMMITTED = "lockgate.commit-notifier.changes"


class CommitNotifier:
    """A core listener that tells observers on the event loop about every committed change.

    Give it to the core at construction and to the :class:`Gateway` that runs the core; the
    gateway connects it to its event loop when it starts."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.observers: list[ChangeObserver] = []

    def __call__(
        self, session: Session, core: Core, ctx: CommandContext | None, changes: Changes
    ) -> None:
        loop = self.loop
        if loop is None or not self.observers or not changes:
            return
        # The transaction's changes, in order, go to the event loop in one hand-over after
        # its commit (one listener per transaction, however many commands it holds).
        committed: list[Changes] | None = session.info.get(_COMMITTED)
        if committed is not None:
            committed.append(changes)
            return
        committed = session.info[_COMMITTED] = [changes]
        observers = list(self.observers)

        def tell(batch: list[Changes]) -> None:
            for each in batch:
                for observer in observers:
                    observer(each)

        def after_commit(sess: Session) -> None:
            batch = sess.info.pop(_COMMITTED, [])
            if batch:
                loop.call_soon_threadsafe(tell, batch)

        def after_rollback(sess: Session) -> None:
            sess.info.pop(_COMMITTED, None)

        event.listen(session, "after_commit", after_commit, once=True)
        event.listen(session, "after_rollback", after_rollback, once=True)


class PeriodicService:
    """A service that runs :meth:`run_once` at start (or ``first_after_s`` seconds after
    it) and then every ``interval_s`` seconds, logging (and surviving) a failed run.
    Subclasses set ``name`` and implement :meth:`run_once`."""

    name = "periodic"

    def __init__(self, interval_s: float, *, first_after_s: float = 0.0) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s: must be positive")
        if first_after_s < 0:
            raise ValueError("first_after_s: must not be negative")
        self.interval_s = interval_s
        self.first_after_s = first_after_s
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, gateway: Gateway) -> None:
        raise NotImplementedError

    async def start(self, gateway: Gateway) -> None:
        self._task = asyncio.create_task(self._loop(gateway), name=f"lockgate-{self.name}")

    async def _loop(self, gateway: Gateway) -> None:
        if self.first_after_s:
            await asyncio.sleep(self.first_after_s)
        while True:
            try:
                await self.run_once(gateway)
            except Exception:
                log.exception("%s failed; retrying in %g s", self.name, self.interval_s)
            await asyncio.sleep(self.interval_s)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)


class Gateway:
    """The running service: a built core on its own thread, its clock, and ``services``.
    Use ``async with gateway:`` or start/stop. Build it with :mod:`gateway.compose`."""

    def __init__(
        self,
        settings: Settings,
        core: Core,
        *,
        notifier: CommitNotifier,
        services: list[Service] | None = None,
        upgrade: bool = True,
    ) -> None:
        if notifier not in core.listeners:
            raise ValueError("notifier: must be one of the core's listeners")
        self.settings = settings
        self.core = core
        self.db = core.db
        self.services: list[Service] = list(services or [])
        self._notifier = notifier
        self._upgrade = upgrade
        self._executor: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._started: list[Service] = []

    # ------------------------------------------------------------------ core access

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the core thread and return its result."""
        if self._executor is None or self._loop is None:
            raise RuntimeError("the gateway is not started")
        return await self._loop.run_in_executor(self._executor, fn, *args)

    def observe(self, observer: ChangeObserver) -> None:
        """Call ``observer(changes)`` on the event loop after every committed change.

        They are for waking up workers (which re-read the store)."""
        self._notifier.observers.append(observer)

    def unobserve(self, observer: ChangeObserver) -> None:
        """Stop calling ``observer`` (see :meth:`observe`)."""
        if observer in self._notifier.observers:
            self._notifier.observers.remove(observer)

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        self._loop = self._notifier.loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lockgate-core")
        try:
            if self._upgrade:
                await self.call(migrate.upgrade, self.db.url)
            else:
                await self.call(migrate.check_up_to_date, self.db.url)
            await self.call(self.core.load)
            self._tick_task = asyncio.create_task(self._tick_loop(), name="lockgate-clock")
            for service in self.services:
                await service.start(self)
                self._started.append(service)
        except BaseException:
            await self.stop()
            raise
        log.info(
            "gateway started on %s with %d services",
            make_url(self.db.url).render_as_string(hide_password=True),
            len(self._started),
        )

    async def stop(self) -> None:
        for service in reversed(self._started):
            try:
                await service.stop()
            except Exception:
                log.exception("service %s failed to stop cleanly", service.name)
        self._started.clear()
        tick, self._tick_task = self._tick_task, None
        await cancel_and_wait(tick)
        self._notifier.loop = None
        if self._executor is not None:
            executor, self._executor = self._executor, None
            # Blocks only until the core finishes the transaction in hand (milliseconds).
            executor.shutdown(wait=True)
        self.db.dispose()

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _tick_loop(self) -> None:
        """Pick up time-driven changes (expiries) and other processes' commits."""
        interval = self.settings.sync.tick_s
        while True:
            await asyncio.sleep(interval)
            try:
                await self.call(self.core.tick)
            except Exception:
                log.exception("clock tick failed; retrying at the next tick")

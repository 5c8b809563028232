"""What every device worker of an agent shares: its task (served again with backoff after
every failure), its availability (logged, and queued for the core as the device's
``availability`` event) and the timeout of each driver call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import ClassVar, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from gateway.agent.local import AgentStore
from gateway.runtime import cancel_and_wait
from gateway.sync.worker import WorkerTiming

log = logging.getLogger(__name__)

T = TypeVar("T")


class AgentDevice:
    """One device of the site served by its own named task until :meth:`stop`.

    A subclass implements :meth:`serve` (connect, then serve until the link fails: it raises,
    is reported offline and is served again after a randomised exponential backoff) and names
    its kind for the log (``kind``) and its task (``task_prefix``)."""

    kind: ClassVar[str] = "device"
    task_prefix: ClassVar[str] = "lockgate-agent"

    def __init__(
        self,
        store: AgentStore,
        device_id: str,
        timing: WorkerTiming | None,
        on_outbox: Callable[[], None],
    ) -> None:
        self.store = store
        self.device_id = device_id
        t = timing or WorkerTiming()
        self.timeout_s = t.timeout_s
        self.retry_initial_s = t.retry_initial_s
        self._wait = wait_random_exponential(multiplier=t.retry_initial_s, max=t.retry_max_s)
        self.on_outbox = on_outbox
        self.online: bool | None = None
        self._task: asyncio.Task[None] | None = None

    async def serve(self) -> None:
        """Connect to the device and serve it; raise when the link fails."""
        raise NotImplementedError

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.task_prefix}-{self.device_id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            async for attempt in AsyncRetrying(
                wait=self._wait,
                retry=retry_if_exception_type(Exception),
                before_sleep=self._failed,
            ):
                with attempt:
                    await self.serve()
            await asyncio.sleep(self.retry_initial_s)

    async def _failed(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        self._availability(False, f"{type(exc).__name__}: {exc}")

    def _availability(self, online: bool, reason: str) -> None:
        """Log a change of the device's availability and queue it for the core (which
        reports it as the device's availability, as for its own devices)."""
        if self.online == online:
            return
        self.online = online
        log.log(
            logging.INFO if online else logging.WARNING,
            "%s %s %s: %s",
            self.kind,
            self.device_id,
            "online" if online else "offline",
            reason,
        )
        self.store.note(
            {
                "kind": "availability",
                "controller": self.device_id,
                "online": online,
                "reason": reason[:200],
                "at": datetime.now(UTC).isoformat(),
            },
            f"availability:{self.device_id}",
        )
        self.on_outbox()

    async def guarded(self, what: str, op: Awaitable[T]) -> T:
        """``op`` within the driver call timeout; a timeout names ``what`` did not finish."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await op
        except TimeoutError:
            raise TimeoutError(f"{what} did not finish within {self.timeout_s:g} s") from None


__all__ = ["AgentDevice"]

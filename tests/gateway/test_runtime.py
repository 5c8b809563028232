"""The core's commit notifier: observers on the event loop hear of committed changes only."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from gateway.rules.engine import Changes
from gateway.runtime import CommitNotifier, cancel_and_wait
from gateway.store.database import Database
from gateway.store.migrate import upgrade


class _Failed(Exception):
    pass


async def test_a_transactions_changes_reach_the_observers_once_committed_in_order(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/n.db"
    upgrade(url)
    db = Database(url)
    heard: list[tuple[str, Changes]] = []
    notifier = CommitNotifier()
    notifier.loop = asyncio.get_running_loop()
    notifier.observers = [lambda c: heard.append(("a", c)), lambda c: heard.append(("b", c))]
    first, second, third = (Changes(controllers={name}) for name in ("c1", "c2", "c3"))
    core: Any = None
    try:

        def commit_two() -> None:
            with db.session() as s:
                notifier(s, core, None, first)
                notifier(s, core, None, Changes())  # nothing changed: nothing told
                notifier(s, core, None, second)
                assert heard == []

        def roll_back_one() -> None:
            with contextlib.suppress(_Failed), db.session() as s:
                notifier(s, core, None, third)
                raise _Failed

        await asyncio.to_thread(commit_two)
        await asyncio.to_thread(roll_back_one)
        for _ in range(3):
            await asyncio.sleep(0)
        assert heard == [("a", first), ("b", first), ("a", second), ("b", second)]
    finally:
        db.dispose()


async def test_a_task_that_lost_its_cancellation_is_cancelled_again() -> None:
    """As when asyncio.wait_for (Python 3.11) swallows a cancellation."""
    cancelled = 0

    async def deaf_once() -> None:
        nonlocal cancelled
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled += 1
                if cancelled > 1:
                    raise
                asyncio.current_task().uncancel()  # type: ignore[union-attr]

    task = asyncio.create_task(deaf_once(), name="deaf-once")
    await asyncio.sleep(0)
    stopping = asyncio.create_task(cancel_and_wait(task, again_s=0.05), name="stopping")
    done, _ = await asyncio.wait({stopping}, timeout=5)
    if not done:  # the task ran on: end it for the test's sake
        task.cancel()
        await asyncio.wait({stopping})
    assert done, "cancel_and_wait still waits for a task that lost its cancellation"
    assert task.cancelled() and cancelled == 2

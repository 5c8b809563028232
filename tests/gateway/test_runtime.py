"""The core's commit notifier: observers on the event loop hear of committed changes only."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from gateway.rules.engine import Changes
from gateway.runtime import CommitNotifier
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

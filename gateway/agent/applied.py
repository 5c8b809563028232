"""The site hub's record of the agents' reports it applied, so that it applies each once.

An agent acknowledges nothing itself: it sends a report until the core acknowledges it, and
the core acknowledges only after the commit. A report is therefore delivered again whenever
the acknowledgement is lost: the core crashed or restarted between the commit and the
acknowledgement, the link broke, the agent resent before the acknowledgement arrived.

Every report names itself by (site, ``store``: the id of the agent's state file, ``seq``: its
outbox sequence number; numbers only grow in a file and are never reused). The hub records
that name in the transaction that applies the report (table ``site_report``) and skips a
report whose name is recorded, or that came twice in the same batch; it acknowledges it all
the same. A new state file has a new id, so its sequence numbers starting again at 1 are no
repeats.

The record stays small: every message carries the lowest sequence number the agent's outbox
still holds (``oldest``); the reports below it are never sent again, and are forgotten once
:data:`KEEP_S` old (a copy sent before the acknowledgement arrived may still wait in the
hub's other queue), at most every :data:`FORGET_EVERY_S` per agent. Retention deletes what
is left past its period (the reports of a state file no longer used).

A report without ``store`` (an agent before store ids) is applied as before: idempotent by
its content where the store can tell (confirmations, controller events, key visits), and
lost events and failed key writes recognised only while the hub runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from sqlalchemy.orm import Session

from gateway.store import device_records as sync_store

KEEP_S = 600.0
"""How long a report below the agent's ``oldest`` stays recorded (a copy of it sent again
before its acknowledgement reached the agent may still be queued at the hub)."""
FORGET_EVERY_S = 60.0
"""Reports of one agent are forgotten at most this often."""


class Report(Protocol):
    """What names an agent's report."""

    @property
    def site(self) -> str: ...

    @property
    def seq(self) -> int: ...

    @property
    def store(self) -> str | None: ...

    @property
    def oldest(self) -> int | None: ...


R = TypeVar("R", bound=Report)


class AppliedReports:
    """The hub's record of applied reports (one per hub; used on the core's thread)."""

    def __init__(self, keep_s: float = KEEP_S, forget_every_s: float = FORGET_EVERY_S) -> None:
        self.keep_s = keep_s
        self.forget_every_s = forget_every_s
        self._forgot: dict[tuple[str, str], float] = {}
        """(site, store) -> when (monotonic) its reports were last forgotten."""

    def fresh(self, s: Session, reports: Sequence[R], now: datetime) -> list[R]:
        """In the transaction that applies ``reports``: those to apply, in order, recorded
        as applied at ``now``. Left out: a report recorded before, or a repeat of one earlier
        in ``reports``. A report without ``store`` is always applied (and not recorded)."""
        by_store: dict[tuple[str, str], list[int]] = {}
        oldest: dict[tuple[str, str], int] = {}
        for r in reports:
            if r.store is not None:
                key = (r.site, r.store)
                by_store.setdefault(key, []).append(r.seq)
                if r.oldest is not None:
                    # the agent still holds the report it sends: never above its seq
                    oldest[key] = max(oldest.get(key, 0), min(r.oldest, r.seq))
        if not by_store:
            return list(reports)
        seen: set[tuple[str, str, int]] = set()
        for (site, store), seqs in by_store.items():
            seen.update((site, store, q) for q in sync_store.applied_reports(s, site, store, seqs))
        out: list[R] = []
        new: list[tuple[str, str, int]] = []
        for r in reports:
            if r.store is None:
                out.append(r)
                continue
            name = (r.site, r.store, r.seq)
            if name in seen:
                continue
            seen.add(name)
            new.append(name)
            out.append(r)
        sync_store.note_applied_reports(s, new, now)
        self._forget(s, oldest, now)
        return out

    def _forget(self, s: Session, oldest: dict[tuple[str, str], int], now: datetime) -> None:
        """Forget the reports below each agent's ``oldest`` applied :attr:`keep_s` ago."""
        clock = time.monotonic()
        for (site, store), below in oldest.items():
            last = self._forgot.get((site, store))
            if last is not None and clock - last < self.forget_every_s:
                continue
            if len(self._forgot) >= 100_000:
                self._forgot.clear()
            self._forgot[(site, store)] = clock
            sync_store.forget_applied_reports(
                s, site, store, below, now - timedelta(seconds=self.keep_s)
            )


__all__ = ["FORGET_EVERY_S", "KEEP_S", "AppliedReports", "Report"]

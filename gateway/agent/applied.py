"""The site hub's record of the agents' reports it applied, so that it applies each once.

An agent acknowledges nothing itself: it sends a report until the core acknowledges it, and
the core acknowledges only after the commit. A report is therefore delivered again whenever
the acknowledgement is lost: the core crashed or restarted between the commit and the
acknowledgement, the link broke, the agent resent before the acknowledgement arrived.

Every report names itself by (site, ``store``: the store id it was queued under, ``seq``: its
outbox sequence number). The agent draws a new store id every time it opens its state file and
keeps with each outbox row the id it was queued under, so a name is never given to two
reports: a new state file, or one restored from a backup (its sequence numbers handed out
again), queues its new reports under a new id, while a row it still holds keeps its name. The
hub records each name in the transaction that applies the report (table ``site_report``) and
skips a report whose name is recorded, or that came twice in the same batch; it acknowledges
it all the same.

Every message also carries the lowest sequence number the agent's outbox still held
(``oldest``). A report queued under a store id was written after every lower-numbered report
of that id, in the same file; so when a message of that id says ``oldest``, every report of
the id below it (and below the message's own ``seq``) was acknowledged or replaced by a newer
one in that file. The hub keeps that number as the id's floor (table ``site_report_floor``,
it only grows), takes every report of the id below it for a repeat, and forgets the records
below it, at most every :data:`FORGET_EVERY_S` per store id. A row of a state file restored
from a backup that the hub applied before the backup was rolled back is thus still
recognised, by its record or by the floor. A message from a file that is no longer the
agent's (one queued before a restore and delivered after it) speaks only of its own store
ids: it cannot make a report queued since the restore pass for a repeat. Retention deletes
what is left past its period (the records and floors of store ids no longer used).

A report without ``store`` (an agent before store ids) is applied as before: idempotent by
its content where the store can tell (confirmations, controller events, key visits), and
lost events and failed key writes recognised only while the hub runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy.orm import Session

from gateway.store import device_records as sync_store

FORGET_EVERY_S = 60.0
"""The floor of one store id is raised (and the records below it forgotten) at most this
often."""


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

    def __init__(self, forget_every_s: float = FORGET_EVERY_S) -> None:
        self.forget_every_s = forget_every_s
        self._forgot: dict[tuple[str, str], float] = {}
        """(site, store) -> when (monotonic) its reports were last forgotten."""

    def fresh(self, s: Session, reports: Sequence[R], now: datetime) -> list[R]:
        """In the transaction that applies ``reports``: those to apply, in order, recorded
        as applied at ``now``. Left out: a report recorded before, or a repeat of one earlier
        in ``reports`` (recorded, or below its store id's floor). A report without ``store``
        is always applied (and not recorded)."""
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
        """Raise each store id's floor to the ``oldest`` its messages said (never above their
        ``seq``), forgetting the records below it."""
        clock = time.monotonic()
        for (site, store), below in oldest.items():
            last = self._forgot.get((site, store))
            if last is not None and clock - last < self.forget_every_s:
                continue
            if len(self._forgot) >= 100_000:
                self._forgot.clear()
            self._forgot[(site, store)] = clock
            sync_store.raise_report_floor(s, site, store, below, now)


__all__ = ["FORGET_EVERY_S", "AppliedReports", "Report"]

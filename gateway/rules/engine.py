"""The incremental rules engine: facts in, desired state of every credential, controller and
cylinder out, recomputing only what a change touches.

``RulesEngine`` holds a :class:`FactSet` and the derived state. Each ``apply``/``remove``
recomputes the credentials the fact can affect (see :mod:`gateway.rules.factset`) and marks
the controllers and cylinders those credentials reach as dirty; their allow-lists and
blacklists are rebuilt lazily on the next read. ``advance(at)`` recomputes what changes by the
mere passing of time (a window starting or ending). After any sequence of changes the result
equals a full recomputation at the same instant — a property test checks exactly that.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from gateway.domain.facts import Fact
from gateway.domain.timeutil import utcnow
from gateway.rules.evaluate import DesiredCredential, evaluate
from gateway.rules.factset import FactSet
from gateway.rules.hardware import (
    AllowListEntry,
    DesiredBlacklist,
    DesiredController,
    KeyExposure,
    build_blacklist,
    build_controller,
    controller_contributions,
    controller_revision,
)
from gateway.rules.parameters import RulesConfig


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a bulk build: the build allocates millions of
    objects, none of them in reference cycles, and every collection it would trigger scans
    the whole site already loaded (a third of the build's time at 100k credentials)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def same_state(a: DesiredCredential | None, b: DesiredCredential | None) -> bool:
    """Equal in everything but the instant they were computed at."""
    if a is None or b is None:
        return a is b
    return (
        a.revision == b.revision
        and a.active == b.active
        and a.reasons == b.reasons
        and a.denied == b.denied
        and (a.window is b.window or a.window == b.window)  # windows are shared objects
        and a.next_change_at == b.next_change_at
        and a.holder == b.holder
    )


@dataclass
class Changes:
    """What one operation changed: credential states (``None`` = no longer exists), and the
    controllers and cylinders whose desired content may have changed."""

    credentials: dict[str, DesiredCredential | None] = field(default_factory=dict)
    controllers: set[str] = field(default_factory=set)
    cylinders: set[str] = field(default_factory=set)

    def merge(self, other: Changes) -> None:
        self.credentials.update(other.credentials)
        self.controllers |= other.controllers
        self.cylinders |= other.cylinders

    def __bool__(self) -> bool:
        return bool(self.credentials or self.controllers or self.cylinders)


class RulesEngine:
    """Derived state of a whole site, kept current incrementally."""

    def __init__(self, cfg: RulesConfig | None = None, facts: FactSet | None = None) -> None:
        self.cfg = cfg or RulesConfig()
        self.facts = facts or FactSet()
        self.at: datetime = utcnow()
        self.states: dict[str, DesiredCredential] = {}
        self._timers: list[tuple[datetime, str]] = []
        self._contrib: dict[str, dict[str, tuple[AllowListEntry, ...]]] = {}
        self._controller_members: defaultdict[str, set[str]] = defaultdict(set)
        self._controllers: dict[str, DesiredController] = {}
        self._controller_digest: defaultdict[str, int] = defaultdict(int)
        self._controller_size: defaultdict[str, int] = defaultdict(int)
        self._exposures: dict[str, KeyExposure] = {}
        self._exposed_on: defaultdict[str, set[str]] = defaultdict(set)
        self._blacklists: dict[str, DesiredBlacklist] = {}
        self._blacklist_timers: list[tuple[datetime, str]] = []

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls, facts: Iterable[Fact], at: datetime | None = None, cfg: RulesConfig | None = None
    ) -> RulesEngine:
        """Load ``facts`` and derive everything at ``at`` (default now)."""
        with gc_paused():
            engine = cls(cfg, FactSet.of(facts))
            engine.rebuild(at)
        return engine

    def rebuild(self, at: datetime | None = None) -> Changes:
        """Derive every credential from scratch at ``at``."""
        self.at = at or utcnow()
        old = self.states
        self.states = {}
        self._timers = []
        self._contrib = {}
        self._controller_members = defaultdict(set)
        self._controllers = {}
        self._controller_digest = defaultdict(int)
        self._controller_size = defaultdict(int)
        self._blacklists = {}
        self._blacklist_timers = []
        changes = Changes()
        with gc_paused():
            for number in self.facts.credentials:
                self._recompute(number, changes, fresh=True)
        for number in old.keys() - self.states.keys():
            changes.credentials[number] = None
        changes.controllers |= set(self.facts.spaces_by_controller)
        changes.cylinders |= set(self._exposed_on)
        return changes

    # ------------------------------------------------------------------ fact changes

    def apply(self, fact: Fact, at: datetime | None = None) -> Changes:
        """Add or replace one fact and recompute what it touches."""
        self._set_time(at)
        return self._recompute_all(self.facts.apply(fact))

    def apply_many(self, facts: Iterable[Fact], at: datetime | None = None) -> Changes:
        """Apply several facts, recomputing each touched credential once."""
        self._set_time(at)
        touched: set[str] = set()
        for f in facts:
            touched |= self.facts.apply(f)
        return self._recompute_all(touched)

    def remove(self, kind: type[Fact], key: tuple[str, ...], at: datetime | None = None) -> Changes:
        """Remove one fact and recompute what it touches."""
        self._set_time(at)
        return self._recompute_all(self.facts.remove(kind, key))

    def advance(self, at: datetime | None = None) -> Changes:
        """Move the engine's clock to ``at`` and recompute everything whose state changes by
        time alone (windows starting or ending, exposures lapsing)."""
        self._set_time(at)
        due: set[str] = set()
        while self._timers and self._timers[0][0] <= self.at:
            when, number = heapq.heappop(self._timers)
            state = self.states.get(number)
            if state is not None and state.next_change_at == when:
                due.add(number)
        changes = self._recompute_all(due)
        while self._blacklist_timers and self._blacklist_timers[0][0] <= self.at:
            when, cylinder = heapq.heappop(self._blacklist_timers)
            cached = self._blacklists.get(cylinder)
            if cached is not None and cached.next_change_at == when:
                del self._blacklists[cylinder]
                changes.cylinders.add(cylinder)
        return changes

    def next_change_at(self) -> datetime | None:
        """The earliest future instant at which :meth:`advance` has something to do."""
        while self._timers:
            when, number = self._timers[0]
            state = self.states.get(number)
            if state is not None and state.next_change_at == when:
                break
            heapq.heappop(self._timers)
        candidates = [self._timers[0][0]] if self._timers else []
        if self._blacklist_timers:
            candidates.append(self._blacklist_timers[0][0])
        return min(candidates, default=None)

    # ------------------------------------------------------------------ exposures

    def set_exposure(self, exposure: KeyExposure) -> Changes:
        """Record what a key physically holds (from a verified write or a read at a station)."""
        changes = Changes()
        old = self._exposures.get(exposure.serial)
        if old is not None:
            for c in old.cylinders:
                self._exposed_on[c].discard(exposure.serial)
            changes.cylinders |= old.cylinders
        self._exposures[exposure.serial] = exposure
        for c in exposure.cylinders:
            self._exposed_on[c].add(exposure.serial)
        changes.cylinders |= exposure.cylinders
        for c in changes.cylinders:
            self._blacklists.pop(c, None)
        return changes

    def exposure(self, serial: str) -> KeyExposure | None:
        return self._exposures.get(serial)

    # ------------------------------------------------------------------ reading

    def state(self, number: str) -> DesiredCredential | None:
        return self.states.get(number)

    def controller(self, controller_id: str) -> DesiredController:
        """The allow-list ``controller_id`` must hold now."""
        cached = self._controllers.get(controller_id)
        if cached is None:
            entries: list[AllowListEntry] = []
            for number in self._controller_members.get(controller_id, ()):
                entries.extend(self._contrib[number][controller_id])
            cached = build_controller(
                controller_id, entries, self.controller_revision(controller_id)
            )
            self._controllers[controller_id] = cached
        return cached

    def controller_revision(self, controller_id: str) -> str:
        """The revision of the allow-list ``controller_id`` must hold (constant time)."""
        return controller_revision(controller_id, self._controller_digest[controller_id])

    def controller_size(self, controller_id: str) -> int:
        """The number of entries of the allow-list ``controller_id`` must hold."""
        return self._controller_size[controller_id]

    def controller_ids(self) -> set[str]:
        """Every controller some space has doors on."""
        return {c for c, spaces in self.facts.spaces_by_controller.items() if spaces}

    def blacklist(self, cylinder: str) -> DesiredBlacklist:
        """The blacklist ``cylinder`` must hold now."""
        cached = self._blacklists.get(cylinder)
        if cached is None:
            exposures = [self._exposures[s] for s in self._exposed_on.get(cylinder, ())]
            cached = build_blacklist(
                cylinder, exposures, self.states, self.facts, self.at, self.cfg.blacklist_capacity
            )
            self._blacklists[cylinder] = cached
            if cached.next_change_at is not None:
                heapq.heappush(self._blacklist_timers, (cached.next_change_at, cylinder))
        return cached

    def blacklisted_cylinders(self) -> set[str]:
        """Cylinders on which some key is exposed (candidates for a non-empty blacklist)."""
        return {c for c, serials in self._exposed_on.items() if serials}

    def cylinders_of(self, state: DesiredCredential) -> dict[str, list[int]]:
        """For a key's state: cylinder -> indexes of the grants that open it."""
        out: dict[str, list[int]] = {}
        for i, g in enumerate(state.grants):
            space = self.facts.spaces.get(g.space_id)
            if space is not None:
                for c in space.cylinders:
                    out.setdefault(c, []).append(i)
        return out

    # ------------------------------------------------------------------ internals

    def _set_time(self, at: datetime | None) -> None:
        self.at = at or utcnow()

    def _recompute_all(self, numbers: Iterable[str]) -> Changes:
        changes = Changes()
        for number in numbers:
            self._recompute(number, changes)
        return changes

    def _recompute(self, number: str, changes: Changes, *, fresh: bool = False) -> None:
        new = evaluate(self.facts, number, self.at, self.cfg)
        old = None if fresh else self.states.get(number)
        if new is None:
            self.states.pop(number, None)
        else:
            self.states[number] = new
            when = new.next_change_at
            # The timer of the state replaced is still queued when it fell on the same
            # instant (a timer leaves the queue only once its state no longer names it, or
            # when it is due, and then its credential is recomputed past it).
            if when is not None and (old is None or old.next_change_at != when):
                heapq.heappush(self._timers, (when, number))
        if fresh or not same_state(old, new):
            changes.credentials[number] = new
        if not fresh and old is not None and new is not None and old.revision == new.revision:
            return
        self._update_contributions(number, new, changes)
        exposure = self._exposures.get(number)
        if exposure is not None:
            changes.cylinders |= exposure.cylinders
            for c in exposure.cylinders:
                self._blacklists.pop(c, None)

    def _update_contributions(
        self, number: str, new: DesiredCredential | None, changes: Changes
    ) -> None:
        old = self._contrib.pop(number, {})
        contrib = controller_contributions(new, self.facts) if new is not None else {}
        if not old and not contrib:
            return  # a key, or a credential that opens no door before and after
        if contrib:
            self._contrib[number] = contrib
        for cid in old.keys() | contrib.keys():
            before, after = old.get(cid, ()), contrib.get(cid, ())
            if before == after:
                continue
            self._controller_digest[cid] += sum(e.digest() for e in after) - sum(
                e.digest() for e in before
            )
            self._controller_size[cid] += len(after) - len(before)
            if cid in contrib:
                self._controller_members[cid].add(number)
            else:
                self._controller_members[cid].discard(number)
            self._controllers.pop(cid, None)
            changes.controllers.add(cid)

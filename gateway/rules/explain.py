"""``explain``: why can or can't this credential open that lock, and what can it open?

The answer lists every condition checked, the fact it came from and whether it held, so an
operator at a programming station or an auditor can see the exact cause of a decision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from gateway.domain.facts import CredentialKind
from gateway.domain.localtime import window_text
from gateway.domain.locks import LockRef, cylinder_lock, door_lock
from gateway.domain.timeutil import WeeklySchedule, Window
from gateway.rules.engine import RulesEngine
from gateway.rules.evaluate import Check, DesiredCredential, Grant, evaluate
from gateway.rules.reasons import DESCRIPTIONS, Reason


@dataclass(frozen=True, slots=True)
class LockAccess:
    """One lock a credential may open, with the window and schedule of the grant."""

    lock: str
    space_id: str
    window: Window
    schedule: str | None


@dataclass
class Explanation:
    """The full answer of :func:`explain`."""

    number: str
    at: datetime
    state: DesiredCredential | None
    checks: list[Check]
    lock: LockRef | None = None
    lock_checks: list[Check] = field(default_factory=list)
    can_open: bool | None = None
    opens: list[LockAccess] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "credential": self.number,
            "at": self.at.isoformat(),
            "state": self.state.as_json() if self.state else None,
            "checks": [c.as_json() for c in self.checks],
            "lock": str(self.lock) if self.lock else None,
            "lock_checks": [c.as_json() for c in self.lock_checks],
            "can_open": self.can_open,
            "opens": [
                {
                    "lock": o.lock,
                    "space": o.space_id,
                    "window": o.window.as_json(),
                    "schedule": o.schedule,
                }
                for o in self.opens
            ],
            "reasons": [
                {"code": r.value, "text": DESCRIPTIONS[r]}
                for r in (self.state.reasons if self.state else (Reason.CREDENTIAL_UNKNOWN,))
            ],
        }


def schedule_summary(schedule: WeeklySchedule | None) -> str | None:
    """A weekly schedule in one line, ``MTWTF-- 06:00-18:00``; ``None`` for no schedule."""
    if schedule is None:
        return None
    days = "MTWTFSS"
    parts = []
    for iv in schedule.intervals:
        d = "".join(days[i] if i in iv.days else "-" for i in range(7))
        parts.append(f"{d} {iv.start.strftime('%H:%M')}-{iv.end.strftime('%H:%M')}")
    return "; ".join(parts)


def explain(
    engine: RulesEngine, number: str, lock: LockRef | None = None, at: datetime | None = None
) -> Explanation:
    """Explain credential ``number`` at ``at`` (default: the engine's clock), optionally for
    one ``lock``. Does not change the engine."""
    when = at or engine.at
    checks: list[Check] = []
    state = evaluate(engine.facts, number, when, engine.cfg, trace=checks)
    result = Explanation(number, when, state, checks, lock)
    if state is None:
        if lock is not None:
            result.can_open = False
        return result
    result.opens = _opens(engine, state)
    if lock is not None:
        result.lock_checks, result.can_open = _lock_checks(engine, state, lock, when)
    return result


def _opens(engine: RulesEngine, state: DesiredCredential) -> list[LockAccess]:
    out: list[LockAccess] = []
    for g in state.grants:
        space = engine.facts.spaces.get(g.space_id)
        if space is None:
            continue
        sched = schedule_summary(g.schedule)
        if state.kind is CredentialKind.KEY:
            out.extend(
                LockAccess(cylinder_lock(c), g.space_id, g.window, sched) for c in space.cylinders
            )
        else:
            out.extend(
                LockAccess(door_lock(d.controller_id, d.door), g.space_id, g.window, sched)
                for d in space.doors
            )
    return out


class _LockContext:
    """What the lock checks share: the credential's state, the lock, the time, and the steps
    derived from them (each computed once, when a check first needs it)."""

    def __init__(
        self, engine: RulesEngine, state: DesiredCredential, lock: LockRef, at: datetime
    ) -> None:
        self.engine = engine
        self.state = state
        self.lock = lock
        self.at = at

    @property
    def credential(self) -> str:
        return f"credential {self.state.number}"

    @cached_property
    def spaces(self) -> set[str]:
        """The spaces that hold the lock."""
        facts, lock = self.engine.facts, self.lock
        if lock.kind == "cylinder":
            assert lock.cylinder is not None
            return set(facts.spaces_by_cylinder.get(lock.cylinder, ()))
        return {
            s
            for s in facts.spaces_by_controller.get(lock.controller_id or "", ())
            if any(
                d.controller_id == lock.controller_id and d.door == lock.door
                for d in facts.spaces[s].doors
            )
        }

    @cached_property
    def grants(self) -> list[Grant]:
        """The credential's grants of a space that holds the lock."""
        return [g for g in self.state.grants if g.space_id in self.spaces]

    @cached_property
    def in_window(self) -> list[Grant]:
        """Those grants whose window contains the time."""
        return [g for g in self.grants if g.window.contains(self.at)]

    @cached_property
    def scheduled(self) -> list[Grant]:
        """Those grants in their window whose weekly schedule (if any) allows the time."""
        tz = self.engine.cfg.timezone
        return [g for g in self.in_window if g.schedule is None or g.schedule.allows(self.at, tz)]


def _lock_in_space(c: _LockContext) -> Check:
    held = bool(c.spaces)
    return Check(
        "lock belongs to a space",
        held,
        str(c.lock),
        ", ".join(sorted(c.spaces)),
        None if held else Reason.LOCK_UNKNOWN,
    )


def _kind_fits(c: _LockContext) -> Check:
    held = (c.lock.kind == "cylinder") == (c.state.kind is CredentialKind.KEY)
    return Check(
        "credential kind fits the lock",
        held,
        c.credential,
        f"{c.state.kind.value} at a {c.lock.kind}",
        None if held else Reason.LOCK_KIND_MISMATCH,
    )


def _active(c: _LockContext) -> Check:
    held = c.state.active
    return Check(
        "credential active",
        held,
        c.credential,
        "active" if held else "not active",
        None if held else (c.state.reasons or (None,))[0],
    )


def _granted(c: _LockContext) -> Check:
    held = bool(c.grants)
    return Check(
        "a granted space contains the lock",
        held,
        c.credential,
        ", ".join(sorted({g.space_id for g in c.grants})) or "none",
        None if held else Reason.LOCK_NOT_GRANTED,
    )


def _in_window(c: _LockContext) -> Check:
    held = bool(c.in_window)
    tz = c.engine.cfg.timezone
    return Check(
        "now inside a granted window",
        held,
        c.credential,
        "; ".join(f"{g.space_id} {window_text(g.window, tz)}" for g in c.grants),
        None if held else Reason.OUTSIDE_WINDOW,
    )


def _schedule_allows(c: _LockContext) -> Check:
    held = bool(c.scheduled)
    local = c.at.astimezone(c.engine.cfg.timezone)
    return Check(
        "weekly schedule allows now",
        held,
        c.credential,
        f"local time {local.strftime('%a %H:%M %Z')}",
        None if held else Reason.OUTSIDE_SCHEDULE,
    )


def _not_blacklisted(c: _LockContext) -> Check | None:
    if c.lock.kind != "cylinder":
        return None
    assert c.lock.cylinder is not None
    bl = c.engine.blacklist(c.lock.cylinder)
    listed = c.state.number in bl.serials
    return Check(
        "not on the cylinder's blacklist",
        not listed,
        str(c.lock),
        f"{len(bl.serials)} keys listed",
        Reason.BLACKLISTED if listed else None,
    )


@dataclass(frozen=True, slots=True)
class _LockCheck:
    """One row of :data:`_LOCK_CHECKS`: a check (``None`` when it does not apply to the lock)
    and whether a failure ends the list (the later checks would say nothing more)."""

    check: Callable[[_LockContext], Check | None]
    final_on_failure: bool


#: The checks of one credential at one lock, in the order they are shown. The credential can
#: open the lock when every check shown held.
_LOCK_CHECKS: tuple[_LockCheck, ...] = (
    _LockCheck(_lock_in_space, final_on_failure=True),
    _LockCheck(_kind_fits, final_on_failure=True),
    _LockCheck(_active, final_on_failure=False),
    _LockCheck(_granted, final_on_failure=True),
    _LockCheck(_in_window, final_on_failure=True),
    _LockCheck(_schedule_allows, final_on_failure=True),
    _LockCheck(_not_blacklisted, final_on_failure=False),
)


def _lock_checks(
    engine: RulesEngine, state: DesiredCredential, lock: LockRef, at: datetime
) -> tuple[list[Check], bool]:
    context = _LockContext(engine, state, lock, at)
    checks: list[Check] = []
    for row in _LOCK_CHECKS:
        check = row.check(context)
        if check is None:
            continue
        checks.append(check)
        if not check.held and row.final_on_failure:
            break
    return checks, all(c.held for c in checks)


__all__ = ["Explanation", "LockAccess", "LockRef", "explain", "schedule_summary"]

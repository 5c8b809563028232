"""``explain``: why can or can't this credential open that lock, and what can it open?

The answer lists every condition checked, the fact it came from and whether it held, so an
operator at a programming station or an auditor can see the exact cause of a decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.domain.facts import CredentialKind
from gateway.domain.localtime import window_text
from gateway.domain.locks import LockRef, cylinder_lock, door_lock
from gateway.domain.timeutil import WeeklySchedule, Window
from gateway.rules.engine import RulesEngine
from gateway.rules.evaluate import Check, DesiredCredential, evaluate
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


def _lock_checks(
    engine: RulesEngine, state: DesiredCredential, lock: LockRef, at: datetime
) -> tuple[list[Check], bool]:
    facts = engine.facts
    checks: list[Check] = []
    if lock.kind == "cylinder":
        assert lock.cylinder is not None
        spaces = set(facts.spaces_by_cylinder.get(lock.cylinder, ()))
    else:
        spaces = {
            s
            for s in facts.spaces_by_controller.get(lock.controller_id or "", ())
            if any(
                d.controller_id == lock.controller_id and d.door == lock.door
                for d in facts.spaces[s].doors
            )
        }
    src = str(lock)
    checks.append(
        Check(
            "lock belongs to a space",
            bool(spaces),
            src,
            ", ".join(sorted(spaces)),
            None if spaces else Reason.LOCK_UNKNOWN,
        )
    )
    if not spaces:
        return checks, False
    kind_ok = (lock.kind == "cylinder") == (state.kind is CredentialKind.KEY)
    checks.append(
        Check(
            "credential kind fits the lock",
            kind_ok,
            f"credential {state.number}",
            f"{state.kind.value} at a {lock.kind}",
            None if kind_ok else Reason.LOCK_KIND_MISMATCH,
        )
    )
    if not kind_ok:
        return checks, False
    checks.append(
        Check(
            "credential active",
            state.active,
            f"credential {state.number}",
            "active" if state.active else "not active",
            None if state.active else (state.reasons or (None,))[0],
        )
    )
    grants = [g for g in state.grants if g.space_id in spaces]
    checks.append(
        Check(
            "a granted space contains the lock",
            bool(grants),
            f"credential {state.number}",
            ", ".join(sorted({g.space_id for g in grants})) or "none",
            None if grants else Reason.LOCK_NOT_GRANTED,
        )
    )
    if not grants:
        return checks, False
    in_window = [g for g in grants if g.window.contains(at)]
    checks.append(
        Check(
            "now inside a granted window",
            bool(in_window),
            f"credential {state.number}",
            "; ".join(f"{g.space_id} {window_text(g.window, engine.cfg.timezone)}" for g in grants),
            None if in_window else Reason.OUTSIDE_WINDOW,
        )
    )
    if not in_window:
        return checks, False
    scheduled = [
        g for g in in_window if g.schedule is None or g.schedule.allows(at, engine.cfg.timezone)
    ]
    checks.append(
        Check(
            "weekly schedule allows now",
            bool(scheduled),
            f"credential {state.number}",
            f"local time {at.astimezone(engine.cfg.timezone).strftime('%a %H:%M %Z')}",
            None if scheduled else Reason.OUTSIDE_SCHEDULE,
        )
    )
    if not scheduled:
        return checks, False
    ok = state.active
    if lock.kind == "cylinder":
        assert lock.cylinder is not None
        bl = engine.blacklist(lock.cylinder)
        listed = state.number in bl.serials
        checks.append(
            Check(
                "not on the cylinder's blacklist",
                not listed,
                src,
                f"{len(bl.serials)} keys listed",
                Reason.BLACKLISTED if listed else None,
            )
        )
        ok = ok and not listed
    return checks, ok


__all__ = ["Explanation", "LockAccess", "LockRef", "explain", "schedule_summary"]

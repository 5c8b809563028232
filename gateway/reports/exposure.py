"""Exposure: what revoked credentials can still open, until when, and why.

An offline key keeps what it was last programmed with until it is updated at a station, its
validity ends or its revalidation deadline passes. Until then the only defence is the
blacklist of each cylinder, which reaches the cylinder through another key's visit. An online
credential (tag, visitor card) stays on a controller until the controller confirms the new
allow-list. This report lists, for each credential that must not open something it may still
open, every such lock with its state. Locks are written ``cylinder:NUMBER`` and
``door:CONTROLLER/DOOR`` (:mod:`gateway.domain.locks`); a credential still on a controller is
listed at every door of the controller that a space names (the controller's allow-list entry
may open any of them), or at ``door:CONTROLLER/*`` when no space names one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gateway.domain.locks import LockRef, cylinder_lock, door_lock
from gateway.rules.engine import RulesEngine
from gateway.rules.hardware import granted_cylinders
from gateway.store import desired as desired_store
from gateway.store import device_records as sync_store

BLOCKED = "blocked"
"""The cylinder confirmed a blacklist that lists the key: it refuses it."""
BLACKLIST_PENDING = "blacklist_pending"
"""The key is on the cylinder's desired blacklist, which has not reached the cylinder yet."""
NOT_BLACKLISTED = "not_blacklisted"
"""The key is not on the cylinder's blacklist (it overflowed the capacity)."""
ON_CONTROLLER = "on_controller"
"""The controller has not yet confirmed an allow-list without the credential."""


ANY_DOOR = "*"
"""The door of ``door:CONTROLLER/*``: every door of the controller."""


@dataclass(frozen=True, slots=True)
class ExposureRow:
    """A lock that a credential can still open although it must not: ``lock`` in the
    canonical notation, ``status`` one of the constants above, ``until`` when the key's own
    validity ends it (``None``: nothing ends it but the revocation reaching the lock)."""

    credential: str
    kind: str
    reasons: tuple[str, ...]
    lock: str
    status: str
    until: datetime | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "credential": self.credential,
            "kind": self.kind,
            "reasons": list(self.reasons),
            "lock": self.lock,
            "status": self.status,
            "until": self.until.isoformat() if self.until else None,
            "detail": self.detail,
        }

    def concerns(self, lock: LockRef) -> bool:
        """True when this row is about ``lock`` (a wildcard door row about every door)."""
        if lock.kind == "cylinder":
            return self.lock == str(lock)
        return self.lock in (str(lock), f"door:{lock.controller_id}/{ANY_DOOR}")


def exposure(session: Session, engine: RulesEngine, now: datetime) -> list[ExposureRow]:
    """Every lock a credential can still open although its desired state says it must not."""
    rows: list[ExposureRow] = []
    confirmed_versions = sync_store.cylinder_versions(session)
    for key in sync_store.all_keys(session):
        if not key.enabled or (key.lapses_at is not None and key.lapses_at <= now):
            continue
        state = engine.state(key.serial)
        allowed = granted_cylinders(state, engine.facts)
        reasons = tuple(r.value for r in state.reasons) if state else ("CREDENTIAL_UNKNOWN",)
        for cylinder in sorted(set(key.cylinders) - allowed, key=int):
            bl = desired_store.get_blacklist(session, cylinder)
            if bl is None or key.serial not in bl.serials:
                status, detail = NOT_BLACKLISTED, "blacklist full: update the key at a station"
            elif confirmed_versions.get(cylinder, 0) >= bl.version:
                status, detail = BLOCKED, f"cylinder confirmed blacklist version {bl.version}"
            else:
                status, detail = (
                    BLACKLIST_PENDING,
                    f"blacklist version {bl.version} waits for a key visiting the cylinder "
                    f"(confirmed: {confirmed_versions.get(cylinder, 0)})",
                )
            rows.append(
                ExposureRow(
                    key.serial,
                    "key",
                    reasons,
                    cylinder_lock(cylinder),
                    status,
                    key.lapses_at,
                    detail,
                )
            )
    for controller in sync_store.all_controllers(session):
        desired = engine.controller(controller.controller_id)
        wanted = {e.credential for e in desired.entries}
        locks = _doors(engine, controller.controller_id)
        for number in controller.credentials:
            if number in wanted:
                continue
            state = engine.state(number)
            reasons = tuple(r.value for r in state.reasons) if state else ("CREDENTIAL_UNKNOWN",)
            job = sync_store.get_job(session, "controller", controller.controller_id)
            detail = "sync pending" + (f" ({job.last_error})" if job and job.last_error else "")
            rows.extend(
                ExposureRow(
                    number,
                    state.kind.value if state else "-",
                    reasons,
                    lock,
                    ON_CONTROLLER,
                    None,
                    detail,
                )
                for lock in locks
            )
    rows.sort(key=lambda r: (r.status == BLOCKED, r.credential, r.lock))
    return rows


def _doors(engine: RulesEngine, controller_id: str) -> list[str]:
    facts = engine.facts
    doors = sorted(
        {
            d.door
            for space_id in facts.spaces_by_controller.get(controller_id, ())
            if (space := facts.spaces.get(space_id)) is not None
            for d in space.doors
            if d.controller_id == controller_id
        }
    )
    if not doors:
        return [f"door:{controller_id}/{ANY_DOOR}"]
    return [door_lock(controller_id, d) for d in doors]

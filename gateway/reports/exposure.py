"""Exposure: what revoked credentials can still open, until when, and why.

An offline key keeps what it was last programmed with until it is updated at a station, its
validity ends or its revalidation deadline passes. Until then the only defence is the
blacklist of each cylinder, which reaches the cylinder through another key's visit. An online
credential (tag, visitor card) stays on a controller until the controller confirms the new
allow-list. This report lists, for each credential that must not open something it may still
open, every such lock with its state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from gateway.rules.engine import RulesEngine
from gateway.rules.hardware import granted_cylinders
from gateway.store import desired as desired_store
from gateway.store import sync as sync_store

BLOCKED = "blocked"
"""The cylinder confirmed a blacklist that lists the key: it refuses it."""
BLACKLIST_PENDING = "blacklist_pending"
"""The key is on the cylinder's desired blacklist, which has not reached the cylinder yet."""
NOT_BLACKLISTED = "not_blacklisted"
"""The key is not on the cylinder's blacklist (it overflowed the capacity)."""
ON_CONTROLLER = "on_controller"
"""The controller has not yet confirmed an allow-list without the credential."""


@dataclass(frozen=True, slots=True)
class ExposureRow:
    credential: str
    kind: str
    reasons: tuple[str, ...]
    lock: str
    status: str
    until: datetime | None
    detail: str


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
                    f"cylinder:{cylinder}",
                    status,
                    key.lapses_at,
                    detail,
                )
            )
    for controller in sync_store.all_controllers(session):
        desired = engine.controller(controller.controller_id)
        wanted = {e.credential for e in desired.entries}
        for number in controller.credentials:
            if number in wanted:
                continue
            state = engine.state(number)
            reasons = tuple(r.value for r in state.reasons) if state else ("CREDENTIAL_UNKNOWN",)
            job = sync_store.get_job(session, "controller", controller.controller_id)
            detail = "sync pending" + (f" ({job.last_error})" if job and job.last_error else "")
            rows.append(
                ExposureRow(
                    number,
                    state.kind.value if state else "-",
                    reasons,
                    f"controller:{controller.controller_id}",
                    ON_CONTROLLER,
                    None,
                    detail,
                )
            )
    rows.sort(key=lambda r: (r.status == BLOCKED, r.credential, r.lock))
    return rows

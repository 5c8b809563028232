"""The audit log as a sync-engine sink: programming results, confirmed revocations, device
availability and hardware events (access granted or denied, doors) become entries.

The sync engine calls a sink inside the transaction that records what a device reported, so
the entry commits with it. Bodies hold device ids, credential numbers, lock numbers and times,
never a person's data; they are logged as they come (``data``), under the action
``device.<kind>`` (``device.key_programmed``, ``device.access_granted``, ...), with the device
as the actor. An entry about a lock has the lock among its subjects (:func:`lock_subject`:
``cylinder 200101``, ``door ctrl-office/1``), so ``lockgate audit show --lock`` finds it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from gateway.audit import log as audit_log
from gateway.core import Core
from gateway.domain.locks import LockRef, LockRefError
from gateway.domain.timeutil import utcnow

_DEVICE_KEYS: Final = ("device", "station", "via_station")
_CREDENTIAL_KEYS: Final = ("credential", "key")


def lock_subject(lock: LockRef) -> str:
    """The audit subject of a lock: ``cylinder 200101`` or ``door ctrl-office/1``."""
    if lock.kind == "cylinder":
        return f"cylinder {lock.cylinder}"
    return f"door {lock.controller_id}/{lock.door}"


def _lock_of(device: str, body: dict[str, Any]) -> LockRef | None:
    try:
        if body.get("cylinder"):
            return LockRef.of_cylinder(body["cylinder"])
        if body.get("door") and device != "gateway":
            return LockRef.of_door(device, int(body["door"]))
    except (LockRefError, TypeError, ValueError):
        return None
    return None


class AuditSink:
    """A :class:`gateway.sync.events.SyncSink` that appends to the audit log."""

    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self.clock = clock

    def availability(self, session: Session, device_id: str, online: bool, reason: str) -> None:
        audit_log.append(
            session,
            at=self.clock(),
            actor=device_id,
            action="device.online" if online else "device.offline",
            subjects=[f"device {device_id}"],
            data={"reason": reason},
        )

    def credential_state(self, session: Session, core: Core, number: str) -> None:
        """Not logged: a credential's derived and confirmed states follow from the commands
        and programming results that are."""

    def event(self, session: Session, kind: str, body: dict[str, Any]) -> None:
        device = next((str(body[k]) for k in _DEVICE_KEYS if body.get(k)), "gateway")
        subjects = [f"device {device}"] if device != "gateway" else []
        for k in _CREDENTIAL_KEYS:
            if body.get(k):
                subjects.append(f"credential {body[k]}")
        lock = _lock_of(device, body)
        if lock is not None:
            subjects.append(lock_subject(lock))
        audit_log.append(
            session,
            at=self.clock(),
            actor=device,
            action=f"device.{kind}",
            subjects=subjects,
            data=body,
        )


__all__ = ["AuditSink", "lock_subject"]

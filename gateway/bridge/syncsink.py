"""The sync engine's reports, published through the bridge's outbox in the events vocabulary
of :mod:`gateway.bridge.payloads`."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from gateway.bridge import payloads as p
from gateway.bridge.outbound import StatePublisher
from gateway.core import Core
from gateway.store import device_records as sync_store

log = logging.getLogger(__name__)

_DEVICE_KINDS = {
    "door_forced": "door_forced",
    "door_held_open": "door_held_open",
    "door_pulsed": "door_pulsed",
    "controller_memory_lost": "controller_memory_lost",
    "blacklist_confirmed": "blacklist_confirmed",
    "device_error": "device_error",
    "device_recovered": "device_recovered",
    "controller_events_lost": "controller_events_lost",
    "device_tamper": "device_tamper",
    "device_tamper_cleared": "device_tamper_cleared",
    "device_power_failure": "device_power_failure",
    "device_power_restored": "device_power_restored",
    "reader_offline": "reader_offline",
    "reader_online": "reader_online",
}


class BridgeSyncSink:
    """A :class:`~gateway.sync.events.SyncSink` writing to the MQTT outbox."""

    def __init__(self, publisher: StatePublisher, core: Core) -> None:
        self.publisher = publisher
        self.core = core

    def availability(self, session: Session, device_id: str, online: bool, reason: str) -> None:
        self.publisher.enqueue_availability(session, device_id, online, reason[:200])

    def credential_state(self, session: Session, core: Core, number: str) -> None:
        self.publisher.enqueue_credential_state(session, core, number)

    def event(self, session: Session, kind: str, body: dict[str, Any]) -> None:
        event = self._map(session, kind, body)
        if event is not None:
            self.publisher.enqueue_event(session, event)

    def _revision(self, number: str) -> str:
        state = self.core.engine.states.get(number)
        return state.revision if state is not None else "-"

    def _written(self, session: Session, serial: str) -> str | None:
        """The credential revision a key was confirmed holding (stored before the event)."""
        held = sync_store.get_key(session, serial)
        return held.credential_revision if held is not None else None

    def _map(self, session: Session, kind: str, b: dict[str, Any]) -> p.EventBody | None:
        """The MQTT event of a sync event (``kind`` and ``b`` as the sync engine reports
        them), or None for a sync event that is not announced."""
        match kind:
            case "revocation_confirmed":
                return p.RevocationConfirmedBody(
                    number=b["credential"],
                    device_id=b["device"],
                    revision=self._revision(b["credential"]),
                )
            case "key_programmed":
                return p.ProgrammingResultBody(
                    device_id=b["station"],
                    number=b["key"],
                    credential_revision=self._written(session, b["key"]),
                    device_revision=b["revision"],
                    ok=True,
                )
            case "key_programming_failed":
                return p.ProgrammingResultBody(
                    device_id=b["station"],
                    number=b["key"],
                    credential_revision=self._revision(b["key"]),
                    device_revision=None,
                    ok=False,
                    error=(b.get("error") or b.get("outcome") or "")[:500],
                )
            case "allow_list_written":
                return p.ProgrammingResultBody(
                    device_id=b["device"],
                    number=None,
                    credential_revision=None,
                    device_revision=b["revision"],
                    ok=True,
                )
            case "access_granted" | "access_denied":
                return _access_event(kind, b)
        if kind in _DEVICE_KINDS:
            return _device_event(_DEVICE_KINDS[kind], b)
        log.debug("sync event %s has no MQTT event kind", kind)
        return None


def _access_event(kind: str, b: dict[str, Any]) -> p.AccessEventBody:
    """An access decision: a door controller's, or one from a key's or cylinder's audit trail
    (collected by a station)."""
    if "door" in b:
        return p.AccessEventBody(
            kind=kind,
            number=b["credential"],
            device_id=b["device"],
            lock=f"{b['device']}:{b['door']}",
            occurred_at=b["at"],
            source="controller",
            reason=b.get("reason") or None,
        )
    return p.AccessEventBody(
        kind=kind,
        number=b["key"],
        device_id=b["via_station"],
        lock=b["cylinder"],
        occurred_at=b["at"],
        source="cylinder_audit" if b.get("source") == "cylinder" else "key_audit",
        reason=b.get("reason") or None,
    )


def _device_event(kind: str, b: dict[str, Any]) -> p.DeviceEventBody:
    """Any other report of a device: its credential, lock, time and details when it says."""
    device = b.get("device") or b.get("via_station") or "-"
    if "cylinder" in b:
        lock: str | None = str(b["cylinder"])
    else:
        lock = f"{device}:{b['door']}" if "door" in b else None
    if "error" in b:
        detail = str(b["error"] or "")[:200]
    else:
        detail = ", ".join(
            f"{k}={v}"
            for k, v in b.items()
            if k in ("version", "generation", "previous_generation")
        )
    return p.DeviceEventBody(
        kind=kind,
        device_id=device,
        number=b.get("credential") or b.get("key"),
        lock=lock,
        occurred_at=b.get("at"),
        detail=detail,
    )

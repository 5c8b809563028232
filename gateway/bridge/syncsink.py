"""The sync engine's reports, published through the bridge's outbox in the events vocabulary
of :mod:`gateway.bridge.payloads`."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

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
        mapped = self._map(session, kind, body)
        if mapped is None:
            return
        self.publisher.enqueue_event(session, *mapped)

    def _revision(self, number: str) -> str:
        state = self.core.engine.states.get(number)
        return state.revision if state is not None else "-"

    def _written(self, session: Session, serial: str) -> str | None:
        """The credential revision a key was confirmed holding (stored before the event)."""
        held = sync_store.get_key(session, serial)
        return held.credential_revision if held is not None else None

    def _map(
        self, session: Session, kind: str, b: dict[str, Any]
    ) -> tuple[str, dict[str, Any]] | None:
        match kind:
            case "revocation_confirmed":
                return kind, {
                    "number": b["credential"],
                    "device_id": b["device"],
                    "revision": self._revision(b["credential"]),
                }
            case "key_programmed":
                return "programming_result", {
                    "device_id": b["station"],
                    "number": b["key"],
                    "credential_revision": self._written(session, b["key"]),
                    "device_revision": b["revision"],
                    "ok": True,
                }
            case "key_programming_failed":
                return "programming_result", {
                    "device_id": b["station"],
                    "number": b["key"],
                    "credential_revision": self._revision(b["key"]),
                    "device_revision": None,
                    "ok": False,
                    "error": (b.get("error") or b.get("outcome") or "")[:500],
                }
            case "allow_list_written":
                return "programming_result", {
                    "device_id": b["device"],
                    "number": None,
                    "credential_revision": None,
                    "device_revision": b["revision"],
                    "ok": True,
                }
            case "access_granted" | "access_denied":
                if "door" in b:
                    return kind, {
                        "number": b["credential"],
                        "device_id": b["device"],
                        "lock": f"{b['device']}:{b['door']}",
                        "occurred_at": b["at"],
                        "source": "controller",
                        "reason": b.get("reason") or None,
                    }
                source = "cylinder_audit" if b.get("source") == "cylinder" else "key_audit"
                return kind, {
                    "number": b["key"],
                    "device_id": b["via_station"],
                    "lock": b["cylinder"],
                    "occurred_at": b["at"],
                    "source": source,
                    "reason": b.get("reason") or None,
                }
        if kind in _DEVICE_KINDS:
            device = b.get("device") or b.get("via_station") or "-"
            return _DEVICE_KINDS[kind], {
                "device_id": device,
                "number": b.get("credential") or b.get("key"),
                "lock": str(b["cylinder"])
                if "cylinder" in b
                else (f"{device}:{b['door']}" if "door" in b else None),
                "occurred_at": b.get("at"),
                "detail": str(b["error"] or "")[:200]
                if "error" in b
                else ", ".join(
                    f"{k}={v}"
                    for k, v in b.items()
                    if k in ("version", "generation", "previous_generation")
                ),
            }
        log.debug("sync event %s has no MQTT event kind", kind)
        return None

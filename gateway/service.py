"""Building the running gateway from its settings: the services, in start order, and how
their parts report to each other.

- the audit log and the role check are installed in the core (every command is logged);
- the MQTT bridge (when enabled) announces credential states, availability and events;
- the sync engine serves every configured controller and wall-mounted station and reports to
  the bridge and the audit log;
- the retention job and the audit anchor run periodically.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from gateway.app import Gateway
from gateway.audit.anchor import AnchorService
from gateway.audit.install import install_audit
from gateway.bridge import MqttBridge
from gateway.bridge.syncsink import BridgeSyncSink
from gateway.config import Settings
from gateway.core import Core
from gateway.retention import RetentionService
from gateway.sync.events import Sinks, SyncSink, confirmed_revision
from gateway.sync.service import SyncService


def build_gateway(settings: Settings, *, extra_sinks: list[SyncSink] | None = None) -> Gateway:
    """The gateway with every service its settings enable (see the module docstring).

    Listeners and loaders are registered here, before the core loads, so that the states
    reconciled at start-up are announced and logged too. ``extra_sinks`` receive the sync
    engine's reports as well (the demo narrates from them)."""
    gateway = Gateway(settings)
    core = gateway.core
    audit_sink = install_audit(core, settings)
    sinks: list[SyncSink] = [audit_sink, *(extra_sinks or [])]
    bridge: MqttBridge | None = None
    if settings.mqtt.enabled:
        bridge = MqttBridge(settings.mqtt, confirmed_lookup=partial(_confirmed, core))
        core.listeners.append(bridge.publisher)
        sinks.insert(0, BridgeSyncSink(bridge.publisher, core))
    gateway.services.append(SyncService(settings, core, Sinks(sinks)))
    if bridge is not None:
        gateway.services.append(bridge)
    gateway.services.append(RetentionService(settings.retention, core))
    gateway.services.append(
        AnchorService(
            every_s=settings.audit.anchor_every_s,
            path=Path(settings.audit.anchor_file) if settings.audit.anchor_file else None,
            publish=partial(_anchor_event, bridge) if bridge is not None else None,
            clock=core.clock,
        )
    )
    return gateway


def _confirmed(core: Core, session: Session, number: str) -> tuple[str, Any] | None:
    return confirmed_revision(session, core, number)


def _anchor_event(bridge: MqttBridge, session: Session, kind: str, body: dict[str, Any]) -> int:
    return bridge.publisher.enqueue_event(
        session,
        "audit_anchor",
        {"head_seq": body["seq"], "head_hash": body["hash"], "head_at": body["at"]},
    )


def mqtt_bridge(gateway: Gateway) -> MqttBridge | None:
    """The gateway's MQTT bridge, or None when MQTT is disabled."""
    return next((s for s in gateway.services if isinstance(s, MqttBridge)), None)


def sync_service(gateway: Gateway) -> SyncService | None:
    """The gateway's sync engine."""
    return next((s for s in gateway.services if isinstance(s, SyncService)), None)


__all__ = ["build_gateway", "mqtt_bridge", "sync_service"]

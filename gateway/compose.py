"""The composition root: the one place that decides what is built from the settings and how
the parts report to each other.

- :func:`build_core` — a loaded-ready :class:`~gateway.core.Core` with the audit log and the
  role check, and (for commands that read or change what devices hold) the sync planner and
  the exposure loader; every command-line command that opens the store uses it.
- :func:`build_gateway` — the running gateway of ``lockgate run`` and the demo: that core plus
  the services the settings enable: the sync engine (serving every configured controller and
  wall-mounted station), the MQTT bridge, the retention job and the audit anchor.
- :func:`build_core_role` — ``lockgate run --role core``: the same gateway, run only while
  this instance holds the leader lease (PostgreSQL; on SQLite it always leads), with the
  lease's fencing token on its store and the takeover reported as a ``leader_elected``
  event;
- :func:`build_desk_station` — the gateway of ``lockgate station``: no services of its own;
  the desk station's worker reports to the audit log and, when MQTT is configured, to the
  outbox that the service's bridge publishes.

A core's listeners, loaders and authorizer are fixed when it is built: everything that must
see every change is created first, here, in this order: the commit notifier (wakes the
workers), the audit (every command, charges, access reviews), the MQTT state publisher, the
sync planner.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

from sqlalchemy.orm import Session

from gateway.audit.anchor import Anchor, AnchorService
from gateway.audit.listeners import CommandLog
from gateway.audit.sink import AuditSink
from gateway.auth.authorizer import Authorizer
from gateway.bridge import MqttBridge
from gateway.bridge.outbound import StatePublisher
from gateway.bridge.payloads import AuditAnchorBody, LeaderElectedBody
from gateway.bridge.syncsink import BridgeSyncSink
from gateway.bridge.topics import TopicMap
from gateway.charges import ChargeRecorder
from gateway.config import Settings
from gateway.core import ChangeListener, Core, Loader
from gateway.domain.timeutil import utcnow
from gateway.leadership import CoreLeadership, LeaseStore, Takeover
from gateway.retention import RetentionService
from gateway.reviews import ReviewRecorder
from gateway.runtime import CommitNotifier, Gateway, Service
from gateway.store.database import Database, normalize_url
from gateway.store.fencing import Fence
from gateway.sync.engine import SyncService
from gateway.sync.events import Sinks, SyncSink, confirmed_revision, prefetch_confirmed
from gateway.sync.planner import load_exposures, plan


def _hints(settings: Settings) -> dict[str, str]:
    """What to tell about an unknown operator that the configuration names."""
    mqtt = settings.mqtt
    return {
        name: "MQTT requests act as this operator: create it with "
        f"`lockgate operator add {name} --role system --token`"
        for name in {mqtt.system_operator, *mqtt.client_operators.values()}
    }


def audit_listeners() -> list[ChangeListener]:
    """The listeners that keep the audit log and the records it feeds: every command
    (accepted or refused, with personal parts erased when a fact's are), lost-card charges,
    access reviews."""
    return [CommandLog(), ChargeRecorder(), ReviewRecorder()]


ServiceFactory = Callable[[Gateway], Service]
"""Makes a service of a running gateway (``build_gateway(extra_services=...)``)."""


@dataclass
class CoreParts:
    """What a core is built with, gathered before it is built."""

    listeners: list[ChangeListener] = field(default_factory=list)
    loaders: list[Loader] = field(default_factory=list)


def build_core(
    settings: Settings,
    *,
    db: Database | None = None,
    clock: Callable[[], datetime] = utcnow,
    authenticated: Collection[str] | None = None,
    sync: bool = True,
    listeners: Sequence[ChangeListener] = (),
) -> Core:
    """A core on the configured database (or ``db``), not yet loaded.

    Every command is checked against its operator's role and logged. ``authenticated`` (the
    command line) restricts acting to the operators that proved their identity in this
    process; ``None`` in the service, where operator names come from the configuration.
    With ``sync`` the sync planner (jobs for every changed desired state) and the exposure
    loader are installed. ``listeners`` come first (the commit notifier, the state
    publisher)."""
    parts = CoreParts(listeners=[*listeners, *audit_listeners()])
    if sync:
        parts.listeners.append(plan)
        parts.loaders.append(load_exposures)
    return Core(
        db or Database(settings.database.resolved_url()),
        settings.rules_config(),
        clock=clock,
        listeners=parts.listeners,
        loaders=parts.loaders,
        authorizer=Authorizer(authenticated=authenticated, hints=_hints(settings)),
    )


def build_gateway(
    settings: Settings,
    *,
    extra_sinks: Sequence[SyncSink] = (),
    extra_services: Sequence[ServiceFactory] = (),
    listeners: Sequence[ChangeListener] = (),
    upgrade: bool = True,
    db: Database | None = None,
    instance: str | None = None,
    may_connect: Callable[[], bool] = lambda: True,
) -> Gateway:
    """The running gateway with every service its settings enable (see the module
    docstring). ``extra_sinks`` receive the sync engine's reports as well (the demo narrates
    from them); ``extra_services`` are made from the gateway and started after the others;
    ``listeners`` are extra core listeners (after the notifier and the state publisher);
    ``db`` is the store (default: the configured one); ``instance`` names this process on
    the bridge state topic (default: new); ``may_connect`` is asked by the bridge before
    every connection to the broker (a core leader: while it holds the lease)."""
    notifier = CommitNotifier()
    bridge = (
        MqttBridge(
            settings.mqtt,
            confirmed_lookup=confirmed_revision,
            confirmed_prefetch=prefetch_confirmed,
            may_connect=may_connect,
        )
        if settings.mqtt.enabled
        else None
    )
    if bridge is not None and instance is not None:
        bridge.instance = instance
    core = build_core(
        settings,
        db=db,
        listeners=[notifier, *([bridge.publisher] if bridge is not None else []), *listeners],
    )
    sinks: list[SyncSink] = [AuditSink(core.clock), *extra_sinks]
    if bridge is not None:
        sinks.insert(0, BridgeSyncSink(bridge.publisher, core))
    services: list[Service] = [SyncService(settings, Sinks(sinks))]
    if bridge is not None:
        services.append(bridge)
    services.append(RetentionService(settings.retention, core))
    services.append(
        AnchorService(
            every_s=settings.audit.anchor_every_s,
            path=Path(settings.audit.anchor_file) if settings.audit.anchor_file else None,
            publish=partial(_anchor_event, bridge) if bridge is not None else None,
            clock=core.clock,
        )
    )
    gateway = Gateway(settings, core, notifier=notifier, services=services, upgrade=upgrade)
    gateway.services.extend(make(gateway) for make in extra_services)
    return gateway


def build_core_role(
    settings: Settings,
    *,
    extra_services: Sequence[ServiceFactory] = (),
    extra_sinks: Sequence[SyncSink] = (),
) -> CoreLeadership:
    """``lockgate run --role core``: the gateway of :func:`build_gateway` (with
    ``extra_services`` and ``extra_sinks``), run while this instance leads (see
    :mod:`gateway.leadership.runner`). On PostgreSQL the instances of one
    database share a lease (``[leadership]`` settings) and the leader's store is fenced with
    its token; on SQLite (one process) the instance always leads. The schema is not upgraded
    by a core: run ``lockgate db upgrade`` first."""
    url = settings.database.resolved_url()

    def factory(fence: Fence | None, instance: str) -> Gateway:
        db = Database(url)
        if fence is not None:
            db.set_fence(fence)
        return build_gateway(
            settings,
            upgrade=False,
            db=db,
            instance=instance,
            may_connect=leadership.leading,
            extra_services=extra_services,
            extra_sinks=extra_sinks,
        )

    if normalize_url(url).get_backend_name() == "sqlite":
        leadership = CoreLeadership.always_leader(factory, on_elected=_announce_leader)
    else:
        lead = settings.leadership
        leadership = CoreLeadership(
            factory,
            lease=LeaseStore(url, lease_s=lead.lease_s, lock_timeout_s=lead.lock_timeout_s),
            renew_s=lead.renew_s,
            on_elected=_announce_leader,
        )
    return leadership


async def _announce_leader(gateway: Gateway, takeover: Takeover) -> None:
    """Report a takeover as a ``leader_elected`` event (when MQTT is on)."""
    bridge = mqtt_bridge(gateway)
    if bridge is None:
        return
    body = LeaderElectedBody(
        instance=takeover.instance,
        token=takeover.token,
        host=takeover.host[:200],
        previous_instance=takeover.previous_instance,
        standby_s=takeover.standby_s,
        console_url=takeover.console_url,
    )

    def enqueue(core: Core) -> None:
        with core.db.session() as s:
            bridge.publisher.enqueue_event(s, body)

    await gateway.call(enqueue, gateway.core)


def build_desk_station(settings: Settings) -> tuple[Gateway, Sinks]:
    """The gateway of a desk station process (``lockgate station``) and the sinks its
    station worker reports to: the audit log and, when MQTT is configured, the outbox (this
    process keeps no broker connection; the service's bridge publishes what it writes, and
    the credential states it writes say what the devices confirmed, as the service's do)."""
    notifier = CommitNotifier()
    core = build_core(settings, listeners=[notifier])
    sinks: list[SyncSink] = [AuditSink(core.clock)]
    if settings.mqtt.enabled:
        publisher = StatePublisher(
            TopicMap(settings.mqtt.base_topic),
            confirmed_lookup=confirmed_revision,
            confirmed_prefetch=prefetch_confirmed,
        )
        sinks.append(BridgeSyncSink(publisher, core))
    return Gateway(settings, core, notifier=notifier, upgrade=False), Sinks(sinks)


def _anchor_event(bridge: MqttBridge, session: Session, anchor: Anchor) -> None:
    bridge.publisher.enqueue_event(
        session,
        AuditAnchorBody(head_seq=anchor.seq, head_hash=anchor.hash, head_at=anchor.at),
    )


def mqtt_bridge(gateway: Gateway) -> MqttBridge | None:
    """The gateway's MQTT bridge, or None when MQTT is disabled."""
    return next((s for s in gateway.services if isinstance(s, MqttBridge)), None)


def sync_service(gateway: Gateway) -> SyncService | None:
    """The gateway's sync engine."""
    return next((s for s in gateway.services if isinstance(s, SyncService)), None)


__all__ = [
    "audit_listeners",
    "build_core",
    "build_core_role",
    "build_desk_station",
    "build_gateway",
    "mqtt_bridge",
    "sync_service",
]

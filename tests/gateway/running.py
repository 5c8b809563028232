"""A running gateway around a core the test builds itself (a clock of its own, no audit, a
recording sink), the way :mod:`gateway.compose` puts one together."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from gateway.config import Settings
from gateway.core import AuthorizationHook, ChangeListener, Core
from gateway.domain.timeutil import utcnow
from gateway.runtime import CommitNotifier, Gateway, Service
from gateway.store.database import Database
from gateway.sync.planner import load_exposures, plan


def sync_core(
    db: Database,
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    listeners: Sequence[ChangeListener] = (),
    authorizer: AuthorizationHook | None = None,
) -> tuple[Core, CommitNotifier]:
    """A core with the sync planner and the exposure loader (what the sync engine needs),
    ``listeners`` and no audit unless given; and the notifier a :class:`Gateway` needs."""
    notifier = CommitNotifier()
    core = Core(
        db,
        settings.rules_config(),
        clock=clock,
        listeners=[notifier, *listeners, plan],
        loaders=[load_exposures],
        authorizer=authorizer,
    )
    return core, notifier


def gateway_of(
    settings: Settings,
    core: Core,
    *,
    services: Sequence[Service] = (),
    upgrade: bool = True,
) -> Gateway:
    """A gateway running ``core`` (which must have a :class:`CommitNotifier` listener)."""
    notifier = next(x for x in core.listeners if isinstance(x, CommitNotifier))
    return Gateway(settings, core, notifier=notifier, services=list(services), upgrade=upgrade)

"""Wiring the audit into a core: listeners, the authorizer, the sync sink."""

from __future__ import annotations

from collections.abc import Collection

from gateway.audit.charges import ChargeRecorder
from gateway.audit.listeners import CommandLog
from gateway.audit.reviews import ReviewRecorder
from gateway.audit.sink import AuditSink
from gateway.auth.authorizer import Authorizer
from gateway.config import Settings
from gateway.core import Core


def _hints(settings: Settings) -> dict[str, str]:
    mqtt = settings.mqtt
    hints: dict[str, str] = {}
    for name in {mqtt.system_operator, *mqtt.client_operators.values()}:
        hints[name] = (
            "MQTT requests act as this operator: create it with "
            f"`lockgate operator add {name} --role system --token`"
        )
    return hints


def install_audit(
    core: Core, settings: Settings, *, authenticated: Collection[str] | None = None
) -> AuditSink:
    """Make ``core`` enforce roles and keep the audit log; return the sink for the sync engine.

    Adds the core listeners that log every command (accepted or refused) and erase personal
    parts when a fact's personal data is erased, record lost-card charges and store access
    reviews; sets the core's authorizer (operators from the store, checked against their
    roles). ``authenticated`` (the CLI) restricts acting to the operators that proved their
    identity in this process; leave it ``None`` in the service, where operator names come
    from the configuration (MQTT system operators) and the gateway itself. Calling it again on
    the same core replaces the authorizer and adds nothing twice.

    The returned :class:`AuditSink` must be given to the sync engine (alongside the MQTT
    bridge's sink) so that programming results and hardware events are logged too.
    """
    for kind in (CommandLog, ChargeRecorder, ReviewRecorder):
        if not any(isinstance(listener, kind) for listener in core.listeners):
            core.listeners.append(kind())
    core.authorizer = Authorizer(authenticated=authenticated, hints=_hints(settings))
    return AuditSink(core.clock)


__all__ = ["install_audit"]

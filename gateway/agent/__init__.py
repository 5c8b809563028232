"""The edge agent of a site (``lockgate agent``) and the core's side of it (:class:`SiteHub`).

An agent serves its site's controllers and wall-mounted key stations through the existing
drivers from a local SQLite store and talks to the core only over MQTT, on the site topics of
the topic map (``<base>/v1/site/<site>/...``). See docs/scaling.md and docs/operations.md
("Many sites").
"""

from __future__ import annotations

import os

from gateway.agent.hub import SiteHub
from gateway.agent.service import Agent
from gateway.bridge import MqttBridge
from gateway.runtime import Gateway
from gateway.sync.engine import SyncService


def site_hub(gateway: Gateway) -> SiteHub:
    """The site hub of a running gateway (``build_gateway(extra_services=[site_hub])``): it
    reports through the sync engine's sinks, like the local controller workers. It connects
    with its own broker account (each account has one connection): ``LOCKGATE_SITES_USERNAME``
    (default: the gateway's account name + ``-sites``) and ``LOCKGATE_SITES_PASSWORD``
    (default: the gateway's password). The ``[hub]`` settings pin sites to their
    controllers."""
    mqtt = gateway.settings.mqtt
    if not mqtt.enabled:
        raise ValueError("--sites: site agents are served over MQTT; set mqtt.enabled")
    sync = next(s for s in gateway.services if isinstance(s, SyncService))
    username = os.environ.get("LOCKGATE_SITES_USERNAME") or (
        f"{mqtt.username}-sites" if mqtt.username else None
    )
    password = os.environ.get("LOCKGATE_SITES_PASSWORD") or mqtt.password
    bridge = next(s for s in gateway.services if isinstance(s, MqttBridge))
    pins = gateway.settings.hub.sites
    return SiteHub(
        mqtt,
        sync.sink,
        sites=pins or None,
        part_bytes=gateway.settings.hub.part_bytes,
        username=username,
        password=password,
        may_connect=bridge.may_connect,
    )


__all__ = ["Agent", "SiteHub", "site_hub"]

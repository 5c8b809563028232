"""Building the running gateway from its settings: the list of services, in start order."""

from __future__ import annotations

from gateway.app import Gateway
from gateway.bridge import MqttBridge
from gateway.config import Settings


def build_gateway(settings: Settings) -> Gateway:
    """The gateway with every service its settings enable.

    The MQTT bridge's state publisher is registered as a core listener here, before the core
    loads, so that states reconciled at start-up are announced too."""
    gateway = Gateway(settings)
    if settings.mqtt.enabled:
        bridge = MqttBridge(settings.mqtt)
        gateway.core.listeners.append(bridge.publisher)
        gateway.services.append(bridge)
    return gateway


def mqtt_bridge(gateway: Gateway) -> MqttBridge | None:
    """The gateway's MQTT bridge, or None when MQTT is disabled."""
    return next((s for s in gateway.services if isinstance(s, MqttBridge)), None)


__all__ = ["build_gateway", "mqtt_bridge"]

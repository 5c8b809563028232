"""What the agent and the site hub share about their broker connections: TLS from the
``[mqtt]`` settings, and publishing several QoS 1 messages at once."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence

import aiomqtt

from gateway.config import MqttSettings


def tls_context(mqtt: MqttSettings) -> ssl.SSLContext | None:
    """The TLS context of ``mqtt.tls`` (CA file, client certificate), or None."""
    if not mqtt.tls:
        return None
    context = ssl.create_default_context(cafile=mqtt.ca_file)
    if mqtt.cert_file:
        context.load_cert_chain(mqtt.cert_file, mqtt.key_file)
    return context


def link_error(exc: aiomqtt.MqttError, mqtt: MqttSettings) -> str:
    """What a failed broker connection means, for the log: a broker certificate the
    configured CA does not vouch for is said so, naming ``mqtt.ca_file``."""
    text = str(exc)
    if mqtt.tls and "CERTIFICATE_VERIFY_FAILED" in text:
        trusted = mqtt.ca_file or "the system's CA certificates"
        return (
            f"the broker {mqtt.host}:{mqtt.port} presented a TLS certificate that mqtt.ca_file "
            f"({trusted}) does not vouch for; not connected: {text}"
        )
    return f"link to the broker lost: {text}"


async def publish_all(
    client: aiomqtt.Client, messages: Sequence[tuple[str, bytes]], name: str
) -> None:
    """Publish ``(topic, payload)`` pairs with QoS 1, not retained, handed to the client in
    this order, each in a named task of a task group (cancelled and awaited with the caller);
    return once the broker acknowledged every one (raise the first failure)."""
    if not messages:
        return
    try:
        async with asyncio.TaskGroup() as group:
            for i, (topic, payload) in enumerate(messages):
                group.create_task(client.publish(topic, payload, qos=1), name=f"{name}-{i}")
    except ExceptionGroup as failed:
        # the callers handle a lost connection (aiomqtt.MqttError) as such
        raise failed.exceptions[0] from None


__all__ = ["link_error", "publish_all", "tls_context"]

"""Publishing several QoS 1 messages at once: handed to the client in order, their PUBACKs
awaited together, each in a named task that is cancelled and awaited with the caller."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiomqtt


async def publish_all(
    client: aiomqtt.Client, messages: Sequence[tuple[str, bytes]], name: str
) -> None:
    """Publish ``(topic, payload)`` pairs with QoS 1, not retained, in this order; return
    once the broker acknowledged every one (raise the first failure)."""
    if not messages:
        return
    try:
        async with asyncio.TaskGroup() as group:
            for i, (topic, payload) in enumerate(messages):
                group.create_task(client.publish(topic, payload, qos=1), name=f"{name}-{i}")
    except ExceptionGroup as failed:
        # the callers handle a lost connection (aiomqtt.MqttError) as such
        raise failed.exceptions[0] from None


__all__ = ["publish_all"]

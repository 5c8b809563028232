"""The MQTT bridge: the contract central systems integrate with (see ``docs/mqtt.md``).

- :mod:`~gateway.bridge.topics` — the one map of topics to payload models;
- :mod:`~gateway.bridge.payloads` and :mod:`~gateway.bridge.envelope` — the payloads, and
  how request bytes become commands or one precise error;
- :mod:`~gateway.bridge.client` — the broker session (the only module that knows the MQTT
  library);
- :mod:`~gateway.bridge.inbound` — requests to the core, responses, acknowledgements;
- :mod:`~gateway.bridge.outbound` — states, availability and events through the outbox;
- :mod:`~gateway.bridge.mqtt_bridge` — :class:`MqttBridge`, the gateway service;
- :mod:`~gateway.bridge.schemas` — JSON Schemas, the AsyncAPI document and the topic docs.
"""

from __future__ import annotations

from gateway.bridge.client import ConnectionLost, ConnectOptions
from gateway.bridge.envelope import MAX_PAYLOAD_BYTES, parse_request
from gateway.bridge.mqtt_bridge import MqttBridge
from gateway.bridge.outbound import ConfirmedLookup, StatePublisher, no_confirmation
from gateway.bridge.topics import SPECS, Direction, TopicMap, TopicSpec

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "SPECS",
    "ConfirmedLookup",
    "ConnectOptions",
    "ConnectionLost",
    "Direction",
    "MqttBridge",
    "StatePublisher",
    "TopicMap",
    "TopicSpec",
    "no_confirmation",
    "parse_request",
]

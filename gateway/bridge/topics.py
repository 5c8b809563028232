"""The topic map: the one typed list of every MQTT topic lockgate uses.

Each :class:`TopicSpec` says where a message goes (a pattern under the base topic), which
pydantic model its payload follows, who publishes it, whether it is retained, its QoS and what
it means. The bridge's handlers, the validation of requests, ``docs/mqtt.md`` and the schemas
in ``schemas/`` are all derived from this map, so a topic exists exactly when it is here.

Patterns are relative to the configured base topic (default ``lockgate``) and start with the
API version, ``v1``. ``{name}`` marks a topic level filled in at run time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel

from gateway.bridge import payloads as p
from gateway.bridge import sitepayloads as sp
from gateway.bridge.envelope import request_model
from gateway.commands.model import COMMANDS, Command

VERSION = "v1"


class Direction(StrEnum):
    """Who publishes: ``inbound`` topics are published by central systems to the gateway,
    ``outbound`` topics by the gateway only."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    AGENT = "agent"
    """Published by a site's edge agent (``lockgate agent``) to the core."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic (or family of topics, when the pattern has ``{parameters}``)."""

    key: str
    """Stable identifier, e.g. ``request.id06_block`` or ``credential_state``."""
    pattern: str
    """Topic under the base, e.g. ``v1/credential/{number}/state``."""
    model: type[BaseModel]
    direction: Direction
    retained: bool
    qos: int
    description: str
    parameters: dict[str, str] = field(default_factory=dict)
    """Description of each ``{parameter}`` of the pattern."""
    command: type[Command] | None = None
    """For requests: the command the request carries."""
    reply: str | None = None
    """For requests: the key of the response topic."""
    schema_file: str = ""
    """Path of the payload's JSON Schema under ``schemas/``."""

    @property
    def levels(self) -> list[str]:
        return self.pattern.split("/")


def _request_specs(command: type[Command]) -> tuple[TopicSpec, TopicSpec]:
    name = command.name
    revokes = " It revokes access, and overtakes queued requests." if command.revokes else ""
    request = TopicSpec(
        key=f"request.{name}",
        pattern=f"{VERSION}/request/{name}",
        model=request_model(command),
        direction=Direction.INBOUND,
        retained=False,
        qos=1,
        description=f"{command.summary}{revokes}",
        command=command,
        reply=f"response.{name}",
        schema_file=f"request/{name}.json",
    )
    response = TopicSpec(
        key=f"response.{name}",
        pattern=f"{VERSION}/response/{name}",
        model=p.Response,
        direction=Direction.OUTBOUND,
        retained=False,
        qos=1,
        description=f"The response to each `{name}` request (unless the request named an MQTT v5 "
        "response topic).",
        schema_file="response.json",
    )
    return request, response


def _specs() -> list[TopicSpec]:
    specs = [
        TopicSpec(
            key="bridge_state",
            pattern=f"{VERSION}/bridge/state",
            model=p.BridgeState,
            direction=Direction.OUTBOUND,
            retained=True,
            qos=1,
            description="`online` once the gateway is connected and subscribed; `offline` when "
            "it stops, and as its last will when it disappears.",
            schema_file="bridge_state.json",
        ),
    ]
    for command in COMMANDS:
        specs.extend(_request_specs(command))
    specs += [
        TopicSpec(
            key="credential_state",
            pattern=f"{VERSION}/credential/{{number}}/state",
            model=p.RetainedCredentialState,
            direction=Direction.OUTBOUND,
            retained=True,
            qos=1,
            description="Desired and confirmed state of one credential, republished on every "
            "change. An empty retained message means the credential no longer exists.",
            parameters={"number": "Credential number (key serial, tag or visitor card number)."},
            schema_file="credential_state.json",
        ),
        TopicSpec(
            key="device_availability",
            pattern=f"{VERSION}/device/{{device_id}}/availability",
            model=p.DeviceAvailability,
            direction=Direction.OUTBOUND,
            retained=True,
            qos=1,
            description="Whether a programming station or door controller is reachable.",
            parameters={"device_id": "Device id from the gateway configuration."},
            schema_file="device_availability.json",
        ),
        TopicSpec(
            key="events",
            pattern=f"{VERSION}/events",
            model=p.Event,
            direction=Direction.OUTBOUND,
            retained=False,
            qos=1,
            description="Revocations, programming results, access granted/denied and expiry "
            "warnings, at least once, in `seq` order.",
            schema_file="event.json",
        ),
    ]
    specs += _site_specs()
    return specs


_SITE = {"site": "Site id: the agent's `--site` and its broker account name."}


def _site_specs() -> list[TopicSpec]:
    """The topics between the core and the edge agent of each site (docs/scaling.md)."""
    return [
        TopicSpec(
            key="site_desired",
            pattern=f"{VERSION}/site/{{site}}/desired",
            model=sp.SiteDesired,
            direction=Direction.OUTBOUND,
            retained=False,
            qos=1,
            description="Desired device state of one site, versioned: a full document or a "
            "delta against the revision the agent last reported. Revoking changes first. A "
            "document larger than the hub's part_bytes comes in parts (part i of parts), which "
            "the agent accepts together once it has them all.",
            parameters=_SITE,
            schema_file="site/desired.json",
        ),
        TopicSpec(
            key="site_ack",
            pattern=f"{VERSION}/site/{{site}}/ack",
            model=sp.SiteAck,
            direction=Direction.OUTBOUND,
            retained=False,
            qos=1,
            description="The core stored these messages of the agent (outbox sequence "
            "numbers): the agent drops them from its outbox.",
            parameters=_SITE,
            schema_file="site/ack.json",
        ),
        TopicSpec(
            key="site_confirm",
            pattern=f"{VERSION}/site/{{site}}/confirm",
            model=sp.SiteConfirms,
            direction=Direction.AGENT,
            retained=False,
            qos=1,
            description="Controllers of the site hold and verified desired allow-lists: the "
            "site's confirmations in one message, each sent until acknowledged, revocations "
            "first.",
            parameters=_SITE,
            schema_file="site/confirm.json",
        ),
        TopicSpec(
            key="site_events",
            pattern=f"{VERSION}/site/{{site}}/events",
            model=sp.SiteEvent,
            direction=Direction.AGENT,
            retained=False,
            qos=1,
            description="Device events and availability collected by the agent; sent until "
            "acknowledged.",
            parameters=_SITE,
            schema_file="site/event.json",
        ),
        TopicSpec(
            key="site_state",
            pattern=f"{VERSION}/site/{{site}}/state",
            model=sp.SiteState,
            direction=Direction.AGENT,
            retained=True,
            qos=1,
            description="The agent's state: online, the desired revision it holds, what its "
            "controllers confirmed; `offline` as its last will.",
            parameters=_SITE,
            schema_file="site/state.json",
        ),
        TopicSpec(
            key="site_key_request",
            pattern=f"{VERSION}/site/{{site}}/key_request",
            model=sp.SiteKeyRequest,
            direction=Direction.AGENT,
            retained=False,
            qos=1,
            description="The agent asks for the planned image of a key inserted at one of its "
            "stations, or of every key it caches (after connecting or a full document).",
            parameters=_SITE,
            schema_file="site/key_request.json",
        ),
        TopicSpec(
            key="site_key_image",
            pattern=f"{VERSION}/site/{{site}}/key_image",
            model=sp.SiteKeyImage,
            direction=Direction.OUTBOUND,
            retained=False,
            qos=1,
            description="The planned image of one key, versioned: the answer to a key request, "
            "or pushed when a key the site caches changes. Revocations first.",
            parameters=_SITE,
            schema_file="site/key_image.json",
        ),
        TopicSpec(
            key="site_key_visit",
            pattern=f"{VERSION}/site/{{site}}/key_visit",
            model=sp.SiteKeyVisit,
            direction=Direction.AGENT,
            retained=False,
            qos=1,
            description="A key at a station of the site: the image it held and its audit trail "
            "(with cylinders' blacklist confirmations); sent until acknowledged.",
            parameters=_SITE,
            schema_file="site/key_visit.json",
        ),
        TopicSpec(
            key="site_key_confirm",
            pattern=f"{VERSION}/site/{{site}}/key_confirm",
            model=sp.SiteKeyConfirm,
            direction=Direction.AGENT,
            retained=False,
            qos=1,
            description="A key at a station of the site holds a planned image, verified; sent "
            "until acknowledged, revocations first.",
            parameters=_SITE,
            schema_file="site/key_confirm.json",
        ),
        TopicSpec(
            key="site_key_failed",
            pattern=f"{VERSION}/site/{{site}}/key_failed",
            model=sp.SiteKeyFailed,
            direction=Direction.AGENT,
            retained=False,
            qos=1,
            description="A write to a key at a station of the site failed or was interrupted "
            "(key pulled out, verification failed); sent until acknowledged.",
            parameters=_SITE,
            schema_file="site/key_failed.json",
        ),
    ]


SPECS: tuple[TopicSpec, ...] = tuple(_specs())
SPECS_BY_KEY: dict[str, TopicSpec] = {s.key: s for s in SPECS}

_LEVEL_FORBIDDEN = re.compile(r"[+#\x00/]")


def check_level(field_name: str, value: str) -> str:
    """Check that ``value`` can be one topic level; raise ValueError naming ``field_name``."""
    if not value:
        raise ValueError(f"{field_name}: must not be empty")
    if _LEVEL_FORBIDDEN.search(value):
        raise ValueError(f"{field_name}: must not contain '/', '+', '#' or NUL, got {value!r}")
    return value


def check_base_topic(base: str) -> str:
    """Validate the configured base topic (one or more levels, no wildcards)."""
    if not base or base.startswith("/") or base.endswith("/"):
        raise ValueError(
            f"mqtt.base_topic: must be non-empty and not start or end with '/', got {base!r}"
        )
    for level in base.split("/"):
        check_level("mqtt.base_topic", level)
    return base


class TopicMap:
    """The specs bound to a base topic: builds concrete topics and matches incoming ones."""

    def __init__(self, base: str = "lockgate") -> None:
        self.base = check_base_topic(base)

    def __iter__(self) -> Iterator[TopicSpec]:
        return iter(SPECS)

    def spec(self, key: str) -> TopicSpec:
        return SPECS_BY_KEY[key]

    def topic(self, key: str, **params: str) -> str:
        """The concrete topic of ``key`` with its parameters filled in."""
        spec = SPECS_BY_KEY[key]
        for name, value in params.items():
            check_level(name, value)
        return f"{self.base}/{spec.pattern.format(**params)}"

    def address(self, key: str) -> str:
        """The topic pattern of ``key`` under this base, ``{parameters}`` kept."""
        return f"{self.base}/{SPECS_BY_KEY[key].pattern}"

    def filter(self, key: str) -> str:
        """The subscription filter matching every topic of ``key``."""
        levels = ["+" if lv.startswith("{") else lv for lv in SPECS_BY_KEY[key].pattern.split("/")]
        return "/".join([self.base, *levels])

    # ------------------------------------------------------------------ requests

    @property
    def request_filter(self) -> str:
        """Filter the gateway subscribes to: every request, known or not."""
        return f"{self.base}/{VERSION}/request/+"

    @property
    def response_prefix(self) -> str:
        """Responses may only go to topics under this prefix."""
        return f"{self.base}/{VERSION}/response/"

    def request_name(self, topic: str) -> str | None:
        """The request name of a request topic, or None when ``topic`` is not one."""
        prefix = f"{self.base}/{VERSION}/request/"
        if not topic.startswith(prefix):
            return None
        name = topic[len(prefix) :]
        return name if name and "/" not in name else None

    def response_topic(self, name: str) -> str:
        return f"{self.response_prefix}{name}"

    def bridge_state(self) -> str:
        return self.topic("bridge_state")

    def credential_state(self, number: str) -> str:
        return self.topic("credential_state", number=number)

    def device_availability(self, device_id: str) -> str:
        return self.topic("device_availability", device_id=device_id)

    def events(self) -> str:
        return self.topic("events")

    def site(self, key: str, site: str) -> str:
        """A site topic (``site_desired``, ``site_confirm``, ...) of site ``site``."""
        return self.topic(key, site=site)

    def site_of(self, topic: str) -> tuple[str, str] | None:
        """``(key, site)`` of a concrete site topic, or None."""
        prefix = f"{self.base}/{VERSION}/site/"
        if not topic.startswith(prefix):
            return None
        parts = topic[len(prefix) :].split("/")
        if len(parts) != 2 or not parts[0]:
            return None
        key = f"site_{parts[1]}"
        return (key, parts[0]) if key in SPECS_BY_KEY else None


__all__ = [
    "SPECS",
    "SPECS_BY_KEY",
    "VERSION",
    "Direction",
    "TopicMap",
    "TopicSpec",
    "check_base_topic",
    "check_level",
]

"""Payloads of the site topics: what the core and a site's edge agent (``lockgate agent``)
exchange over MQTT.

Down (core -> agent): :class:`SiteDesired` documents, versioned per site (a full document, or
a delta against a revision the agent confirmed), and :class:`SiteAck` for what the core has
stored. Up (agent -> core): :class:`SiteConfirm` (a controller holds and verified a desired
allow-list), :class:`SiteEvent` (device events), and the retained :class:`SiteState`.
Every up message carries the agent's outbox sequence number: the core applies it idempotently
and acknowledges it once stored; the agent sends it again until acknowledged.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

_ID = r"^[A-Za-z0-9_.:-]{1,64}$"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowDoc(_Payload):
    """One window of a weekly schedule as devices store it."""

    days_mask: int = Field(ge=0, le=0x7F, description="Bit 0 Monday .. bit 6 Sunday.")
    start_minute: int = Field(ge=0, le=1440)
    end_minute: int = Field(ge=0, le=1440)


class ScheduleDoc(_Payload):
    """A weekly schedule referred to by allow-list entries."""

    schedule_id: int = Field(ge=1, le=254)
    windows: list[WindowDoc]


class AllowEntryDoc(_Payload):
    """One allow-list entry (``drivers.base.AllowEntry``)."""

    credential: int = Field(ge=0)
    doors_mask: int = Field(ge=0)
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    schedule_id: int = Field(default=0, ge=0, le=254)


class ControllerDoc(_Payload):
    """The desired state of one controller: its whole allow-list at one desired revision."""

    revision: str = Field(min_length=1, max_length=64, description="Desired revision.")
    revoking: bool = Field(
        default=False, description="This change takes access away: serve it first."
    )
    entries: list[AllowEntryDoc]
    schedules: list[ScheduleDoc] = Field(default_factory=list)


class SiteDesired(_Payload):
    """A site's desired device state, revision ``revision``. ``base`` None: a full document
    (every controller of the site); otherwise a delta, valid only on top of revision ``base``
    (the controllers that changed since, whole)."""

    site: str = Field(pattern=_ID)
    revision: int = Field(ge=1)
    base: int | None = Field(default=None, ge=1)
    controllers: dict[str, ControllerDoc]
    issued_at: AwareDatetime

    @model_validator(mode="after")
    def _base_before(self) -> SiteDesired:
        if self.base is not None and self.base >= self.revision:
            raise ValueError(f"base: must be below revision {self.revision}, got {self.base}")
        return self


class SiteConfirm(_Payload):
    """A controller of the site holds the allow-list of desired revision ``revision`` and its
    checksum was verified after the commit."""

    site: str = Field(pattern=_ID)
    seq: int = Field(ge=1, description="The agent's outbox sequence number.")
    controller: str = Field(min_length=1, max_length=64)
    revision: str = Field(min_length=1, max_length=64)
    checksum: int = Field(ge=0)
    generation: int = Field(ge=0)
    credentials: list[str]
    entries: int = Field(ge=0)
    ms: float = Field(ge=0, description="How long the write took.")
    at: AwareDatetime


class SiteEvent(_Payload):
    """A device event collected by the agent (read from the controller, not yet known to the
    core). ``(controller, generation, sequence)`` identifies it."""

    site: str = Field(pattern=_ID)
    seq: int = Field(ge=1, description="The agent's outbox sequence number.")
    kind: Literal["controller_event", "availability", "device_error"]
    controller: str = Field(min_length=1, max_length=64)
    generation: int = Field(default=0, ge=0)
    sequence: int = Field(default=0, ge=0)
    event: str = Field(default="", max_length=32, description="Driver event kind.")
    credential: str = Field(default="", max_length=32)
    door: int = Field(default=0, ge=0)
    reason: str | None = Field(default=None, max_length=200)
    online: bool | None = None
    at: AwareDatetime


class SiteAck(_Payload):
    """The core stored the agent's messages with these outbox sequence numbers."""

    site: str = Field(pattern=_ID)
    seqs: list[int]


class SiteState(_Payload):
    """The agent's state, retained: whether it is connected, the desired revision it holds,
    what each controller confirmed, and why it published (``connected``, ``applied``,
    ``refused: <reason>``, or ``offline`` as its last will)."""

    site: str = Field(pattern=_ID)
    online: bool
    revision: int | None = Field(default=None, ge=1)
    reason: str = Field(default="", max_length=300)
    controllers: dict[str, str | None] = Field(default_factory=dict)
    waiting: int = Field(default=0, ge=0, description="Messages in the agent's outbox.")
    at: AwareDatetime


def dump(model: BaseModel) -> bytes:
    """The wire form of a site payload."""
    return model.model_dump_json(exclude_none=False).encode()


SITE_PAYLOADS: dict[str, type[BaseModel]] = {
    "desired": SiteDesired,
    "ack": SiteAck,
    "confirm": SiteConfirm,
    "events": SiteEvent,
    "state": SiteState,
}

__all__ = [
    "SITE_PAYLOADS",
    "AllowEntryDoc",
    "ControllerDoc",
    "ScheduleDoc",
    "SiteAck",
    "SiteConfirm",
    "SiteDesired",
    "SiteEvent",
    "SiteState",
    "WindowDoc",
    "dump",
]

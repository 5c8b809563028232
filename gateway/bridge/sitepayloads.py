"""Payloads of the site topics: what the core and a site's edge agent (``lockgate agent``)
exchange over MQTT.

Down (core -> agent): :class:`SiteDesired` documents, versioned per site (a full document, or
a delta against a revision the agent confirmed), and :class:`SiteAck` for what the core has
stored. Up (agent -> core): :class:`SiteConfirms` (controllers hold and verified desired
allow-lists, one :class:`SiteConfirm` each), :class:`SiteEvent` (device events), and the
retained :class:`SiteState`. Key stations at the site: the agent asks for keys' planned images
(:class:`SiteKeyRequest`), the core answers or pushes them (:class:`SiteKeyImage`), and the
agent reports what a key held and its audit trail (:class:`SiteKeyVisit`) and what it wrote
(:class:`SiteKeyConfirm`).
Every up message carries the agent's outbox sequence number and the store id it was queued
under (``store``): the core applies it once (recording it in the transaction that applies it) and
acknowledges it once stored; the agent sends it again until acknowledged.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

_ID = r"^[A-Za-z0-9_.:-]{1,64}$"
_SITE = "Site id (the agent's --site)."
_SEQ = "The agent's outbox sequence number."
_STORE = (
    "Store id the report was queued under (random; the agent draws a new one every time it "
    "opens its state file and keeps it with the queued report): with ``seq`` it names the "
    "report, so that the core applies it once however often it comes, across restarts of the "
    "core, and sequence numbers handed out again (a new state file, or one restored from a "
    "backup) are not taken for repeats. Absent: an agent before store ids (the core then "
    "tells repeats of lost events and failed key writes only while it runs)."
)
_OLDEST = (
    "The lowest outbox sequence number the agent still held when it sent this message: every "
    "report queued under the same store id with a lower number was acknowledged or replaced, "
    "so the core takes it for a repeat should it come again and forgets its record."
)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowDoc(_Payload):
    """One window of a weekly schedule as devices store it."""

    days_mask: int = Field(ge=0, le=0x7F, description="Bit 0 Monday .. bit 6 Sunday.")
    start_minute: int = Field(ge=0, le=1440, description="First minute of the day (local).")
    end_minute: int = Field(ge=0, le=1440, description="Minute the window ends (exclusive).")


class ScheduleDoc(_Payload):
    """A weekly schedule referred to by allow-list entries."""

    schedule_id: int = Field(ge=1, le=254, description="Id entries refer to.")
    windows: list[WindowDoc] = Field(description="The schedule's weekly windows.")


class AllowEntryDoc(_Payload):
    """One allow-list entry (``drivers.base.AllowEntry``)."""

    credential: int = Field(ge=0, description="Credential number (tag or card).")
    doors_mask: int = Field(ge=0, description="Doors it opens: bit 0 is door 1.")
    valid_from: AwareDatetime | None = Field(default=None, description="Valid from (none: now).")
    valid_until: AwareDatetime | None = Field(default=None, description="Valid until (none: open).")
    schedule_id: int = Field(default=0, ge=0, le=254, description="Schedule (0: always).")


class ControllerDoc(_Payload):
    """The desired state of one controller: its whole allow-list at one desired revision."""

    revision: str = Field(min_length=1, max_length=64, description="Desired revision.")
    revoking: bool = Field(
        default=False, description="This change takes access away: serve it first."
    )
    entries: list[AllowEntryDoc] = Field(description="The whole allow-list.")
    schedules: list[ScheduleDoc] = Field(
        default_factory=list, description="The schedules its entries refer to."
    )


class SiteDesired(_Payload):
    """A site's desired device state, revision ``revision``. ``base`` None: a full document
    (every controller of the site); otherwise a delta, valid only on top of revision ``base``
    (the controllers that changed since, whole). A document too large for one message comes
    in ``parts`` messages."""

    site: str = Field(pattern=_ID, description=_SITE)
    revision: int = Field(ge=1, description="The site's desired revision, increasing.")
    base: int | None = Field(
        default=None, ge=1, description="None: a full document; else the revision it changes."
    )
    controllers: dict[str, ControllerDoc] = Field(
        description="Controller id -> its desired state (revoking ones first)."
    )
    issued_at: AwareDatetime = Field(description="When the core made the document.")
    part: int = Field(
        default=1,
        ge=1,
        description="This message's part of the document (1-based): a document too large for "
        "one message is sent in parts of the same site, revision and base, each with some of "
        "its controllers in order (a large allow-list over consecutive parts, every piece with "
        "the controller's revision); the agent accepts it once it has every part.",
    )
    parts: int = Field(
        default=1, ge=1, le=100000, description="How many parts the document has (1: whole)."
    )

    @model_validator(mode="after")
    def _base_before(self) -> SiteDesired:
        if self.base is not None and self.base >= self.revision:
            raise ValueError(f"base: must be below revision {self.revision}, got {self.base}")
        if self.part > self.parts:
            raise ValueError(f"part: {self.part} of {self.parts} parts")
        return self


class SiteConfirm(_Payload):
    """A controller of the site holds the allow-list of desired revision ``revision`` and its
    checksum was verified after the commit."""

    site: str = Field(pattern=_ID, description=_SITE)
    seq: int = Field(ge=1, description=_SEQ)
    store: str | None = Field(default=None, pattern=_ID, description=_STORE)
    oldest: int | None = Field(default=None, ge=1, description=_OLDEST)
    controller: str = Field(min_length=1, max_length=64, description="Controller id.")
    revision: str = Field(min_length=1, max_length=64, description="Desired revision held.")
    checksum: int = Field(ge=0, description="Allow-list checksum the controller reported.")
    generation: int = Field(ge=0, description="The controller's memory generation.")
    credentials: list[str] = Field(description="Credential numbers on the list.")
    entries: int = Field(ge=0, description="Number of entries written.")
    ms: float = Field(ge=0, description="How long the write took.")
    at: AwareDatetime = Field(description="When the write was verified.")


class SiteConfirms(_Payload):
    """Confirmations of one site in one message, each with its own outbox sequence number
    (acknowledged one by one); ``store`` and ``oldest`` hold for those that do not name their
    own (one queued under an earlier store id names it). A core also
    accepts a single :class:`SiteConfirm` on the topic (agents before confirmations were
    coalesced)."""

    site: str = Field(pattern=_ID, description=_SITE)
    store: str | None = Field(default=None, pattern=_ID, description=_STORE)
    oldest: int | None = Field(default=None, ge=1, description=_OLDEST)
    confirms: list[SiteConfirm] = Field(
        min_length=1, max_length=10000, description="The confirmations, revoking ones first."
    )


class SiteEvent(_Payload):
    """A device event collected by the agent (read from the controller, not yet known to the
    core). ``(controller, generation, sequence)`` identifies it."""

    site: str = Field(pattern=_ID, description=_SITE)
    seq: int = Field(ge=1, description=_SEQ)
    store: str | None = Field(default=None, pattern=_ID, description=_STORE)
    oldest: int | None = Field(default=None, ge=1, description=_OLDEST)
    kind: Literal["controller_event", "availability", "device_error", "events_lost"] = Field(
        description="An event read from the controller, the controller's availability, or "
        "events the controller lost before the agent read them (``sequence``..``last``)."
    )
    controller: str = Field(
        min_length=1,
        max_length=64,
        description="Controller id (a station id for a station's availability).",
    )
    generation: int = Field(default=0, ge=0, description="Memory generation of the event.")
    sequence: int = Field(default=0, ge=0, description="Event sequence on the controller.")
    event: str = Field(default="", max_length=32, description="Driver event kind.")
    credential: str = Field(default="", max_length=32, description="Credential presented.")
    door: int = Field(default=0, ge=0, description="Door number (1-based).")
    last: int = Field(
        default=0, ge=0, description="Events lost: the last sequence lost (the first: sequence)."
    )
    reason: str | None = Field(
        default=None,
        max_length=200,
        description="Why denied, why (un)available, or why events were lost "
        "(``overwritten``, ``reset``).",
    )
    online: bool | None = Field(default=None, description="Availability: reachable or not.")
    at: AwareDatetime = Field(description="When it happened.")


class SiteAck(_Payload):
    """The core stored the agent's messages with these outbox sequence numbers (queued under
    store id ``store``)."""

    site: str = Field(pattern=_ID, description=_SITE)
    store: str | None = Field(
        default=None,
        pattern=_ID,
        description="The store id the reports were queued under: the agent drops only its "
        "rows queued under it, so that an acknowledgement of a report of a lost timeline (a "
        "state file since restored from a backup) never drops a new report reusing its "
        "number. Absent: the reports named none (an agent before store ids), or a core before "
        "it named them.",
    )
    seqs: list[int] = Field(description="Outbox sequence numbers stored by the core.")


class SiteState(_Payload):
    """The agent's state, retained: whether it is connected, the desired revision it holds,
    what each controller confirmed, and why it published (``connected``, ``applied``,
    ``refused: <reason>``, or ``offline`` as its last will)."""

    site: str = Field(pattern=_ID, description=_SITE)
    online: bool = Field(description="Whether the agent is connected.")
    revision: int | None = Field(default=None, ge=1, description="Desired revision held.")
    reason: str = Field(default="", max_length=300, description="Why it published.")
    controllers: dict[str, str | None] = Field(
        default_factory=dict, description="Controller id -> desired revision it confirmed."
    )
    waiting: int = Field(default=0, ge=0, description="Messages in the agent's outbox.")
    at: AwareDatetime = Field(description="When it published.")
    waiting_for_core: AwareDatetime | None = Field(
        default=None,
        description="Since when a key at one of its stations got no answer from the core "
        "(central updates are waiting); none once the core answers again.",
    )


# --- key programming stations at the site ----------------------------------------------------


class AccessDoc(_Payload):
    """One line of a key's access list (``drivers.base.AccessEntry``)."""

    cylinder: int = Field(ge=0, description="Cylinder number.")
    valid_from: AwareDatetime | None = Field(default=None, description="From (none: open).")
    valid_until: AwareDatetime | None = Field(default=None, description="Until (none: open).")
    schedule_id: int = Field(default=0, ge=0, le=254, description="Schedule (0: always).")


class BlacklistDoc(_Payload):
    """A blacklist a key carries to a cylinder (``drivers.base.BlacklistEntry``)."""

    cylinder: int = Field(ge=0, description="Cylinder number.")
    version: int = Field(ge=0, description="Blacklist version (only grows).")
    serials: list[str] = Field(description="Key serials the cylinder must refuse.")


class KeyImageDoc(_Payload):
    """Everything a key holds that decides what it opens (``drivers.base.KeyImage``)."""

    serial: str = Field(pattern=_ID, description="Key serial.")
    revision: str = Field(max_length=64, description="Image revision tag (opaque).")
    enabled: bool = Field(description="False: the key opens nothing.")
    valid_from: AwareDatetime | None = Field(default=None, description="Key valid from.")
    valid_until: AwareDatetime | None = Field(default=None, description="Key valid until.")
    revalidate_by: AwareDatetime | None = Field(
        default=None, description="After this the key opens nothing until updated again."
    )
    schedules: list[ScheduleDoc] = Field(default_factory=list, description="Schedules.")
    access: list[AccessDoc] = Field(default_factory=list, description="Access entries.")
    blacklists: list[BlacklistDoc] = Field(
        default_factory=list, description="Blacklists it carries to cylinders."
    )


class AuditRecordDoc(_Payload):
    """One record of a key's audit trail (``drivers.base.KeyAuditRecord``)."""

    sequence: int = Field(ge=0, description="Sequence, unique per (source, cylinder).")
    at: AwareDatetime = Field(description="When it happened.")
    cylinder: int = Field(ge=0, description="Cylinder number.")
    key_serial: str = Field(max_length=64, description="The key the record is about.")
    outcome: Literal["granted", "denied", "blacklist_applied"] = Field(
        description="What happened at the cylinder."
    )
    reason: str = Field(default="", max_length=200, description="Why denied.")
    blacklist_version: int = Field(default=0, ge=0, description="Blacklist version applied.")
    source: Literal["key", "cylinder"] = Field(default="key", description="Whose trail.")


class SiteKeyRequest(_Payload):
    """The agent asks for the planned image of keys: one key just inserted at a station, or
    (after a connection or a full desired document) every key it holds an image for. Not
    queued: a request the core does not answer in time is not repeated for that visit."""

    site: str = Field(pattern=_ID, description=_SITE)
    serials: list[str] = Field(
        min_length=1, max_length=500, description="Key serials whose planned image is asked."
    )
    station: str | None = Field(
        default=None, max_length=64, description="The station the key is in, if any."
    )


class SiteKeyImage(_Payload):
    """The planned image of one key for a site (answer to a request, or pushed when its
    desired state changed). ``version`` grows with every image of the key the core plans;
    the agent keeps only the newest. ``image`` None: the key is not registered (write
    nothing)."""

    site: str = Field(pattern=_ID, description=_SITE)
    serial: str = Field(pattern=_ID, description="Key serial.")
    version: int = Field(ge=1, description="Version of this key's image, increasing.")
    revoking: bool = Field(
        default=False, description="The image takes access away (sent and served first)."
    )
    image: KeyImageDoc | None = Field(description="The image to write; none: not registered.")
    credential_revision: str | None = Field(
        default=None, max_length=64, description="Desired revision of the credential."
    )
    cylinders: list[str] = Field(default_factory=list, description="Cylinders it opens.")
    lapses_at: AwareDatetime | None = Field(default=None, description="When it stops opening.")
    blacklist_versions: dict[str, int] = Field(
        default_factory=dict, description="Cylinder -> blacklist version it carries."
    )
    issued_at: AwareDatetime = Field(description="When the core planned it.")

    @model_validator(mode="after")
    def _same_key(self) -> SiteKeyImage:
        if self.image is not None and self.image.serial != self.serial:
            raise ValueError(f"image.serial: {self.image.serial} is not the key {self.serial}")
        return self


class SiteKeyVisit(_Payload):
    """A key was at a station of the site: the image it held (its exposure) and the audit
    records read from it (its own and those cylinders handed to it), stored by the agent
    before it cleared them on the key."""

    site: str = Field(pattern=_ID, description=_SITE)
    seq: int = Field(ge=1, description=_SEQ)
    store: str | None = Field(default=None, pattern=_ID, description=_STORE)
    oldest: int | None = Field(default=None, ge=1, description=_OLDEST)
    station: str = Field(min_length=1, max_length=64, description="Station id.")
    serial: str = Field(pattern=_ID, description="Key serial.")
    held: KeyImageDoc = Field(description="The image the key held when inserted.")
    records: list[AuditRecordDoc] = Field(description="The audit records read, oldest first.")
    at: AwareDatetime = Field(description="When the key was read.")


class SiteKeyConfirm(_Payload):
    """A key at a station of the site holds (written and verified, or found up to date) the
    image of revision ``revision`` planned by the core (``version``)."""

    site: str = Field(pattern=_ID, description=_SITE)
    seq: int = Field(ge=1, description=_SEQ)
    store: str | None = Field(default=None, pattern=_ID, description=_STORE)
    oldest: int | None = Field(default=None, ge=1, description=_OLDEST)
    station: str = Field(min_length=1, max_length=64, description="Station id.")
    serial: str = Field(pattern=_ID, description="Key serial.")
    version: int = Field(ge=1, description="Version of the planned image it holds.")
    revision: str = Field(max_length=64, description="Image revision the key holds.")
    written: bool = Field(description="Written now (false: it already held it).")
    cached: bool = Field(
        default=False, description="Written from the agent's cache while the core was away."
    )
    enabled: bool = Field(description="Whether the image opens anything.")
    credential_revision: str | None = Field(
        default=None, max_length=64, description="Desired revision of the credential."
    )
    cylinders: list[str] = Field(default_factory=list, description="Cylinders it opens.")
    lapses_at: AwareDatetime | None = Field(default=None, description="When it stops opening.")
    blacklist_versions: dict[str, int] = Field(
        default_factory=dict, description="Cylinder -> blacklist version it carries."
    )
    bytes_sent: int = Field(default=0, ge=0, description="Bytes written to the key.")
    delta: bool = Field(default=False, description="Written as a delta.")
    ms: float = Field(default=0, ge=0, description="How long the visit took.")
    at: AwareDatetime = Field(description="When it was verified.")


class SiteKeyFailed(_Payload):
    """A write of a planned image to a key at a station of the site failed or was
    interrupted (the key pulled out early, the read-back not matching, a driver error): the
    key keeps its old image and its job stays pending. ``(station, serial, at)`` identifies
    it: the core records it once."""

    site: str = Field(pattern=_ID, description=_SITE)
    seq: int = Field(ge=1, description=_SEQ)
    store: str | None = Field(default=None, pattern=_ID, description=_STORE)
    oldest: int | None = Field(default=None, ge=1, description=_OLDEST)
    station: str = Field(min_length=1, max_length=64, description="Station id.")
    serial: str = Field(pattern=_ID, description="Key serial.")
    outcome: Literal["pulled", "failed"] = Field(
        description="pulled: the key was taken out during the write; failed: the write or "
        "its verification failed."
    )
    error: str = Field(default="", max_length=500, description="What the driver reported.")
    version: int | None = Field(
        default=None, ge=1, description="Version of the planned image that was being written."
    )
    cached: bool = Field(
        default=False, description="The image came from the agent's cache (the core was away)."
    )
    at: AwareDatetime = Field(description="When the write ended.")


def dump(model: BaseModel) -> bytes:
    """The wire form of a site payload. A whole desired document leaves out ``part`` and
    ``parts``, an acknowledgement naming no store id ``store``: agents that know neither
    accept them as before."""
    if isinstance(model, SiteDesired) and model.parts == 1:
        return model.model_dump_json(exclude={"part", "parts"}).encode()
    if isinstance(model, SiteAck) and model.store is None:
        return model.model_dump_json(exclude={"store"}).encode()
    return model.model_dump_json().encode()


SITE_PAYLOADS: dict[str, type[BaseModel]] = {
    "desired": SiteDesired,
    "ack": SiteAck,
    "confirm": SiteConfirms,
    "events": SiteEvent,
    "state": SiteState,
    "key_request": SiteKeyRequest,
    "key_image": SiteKeyImage,
    "key_visit": SiteKeyVisit,
    "key_confirm": SiteKeyConfirm,
    "key_failed": SiteKeyFailed,
}

__all__ = [
    "SITE_PAYLOADS",
    "AccessDoc",
    "AllowEntryDoc",
    "AuditRecordDoc",
    "BlacklistDoc",
    "ControllerDoc",
    "KeyImageDoc",
    "ScheduleDoc",
    "SiteAck",
    "SiteConfirm",
    "SiteConfirms",
    "SiteDesired",
    "SiteEvent",
    "SiteKeyConfirm",
    "SiteKeyFailed",
    "SiteKeyImage",
    "SiteKeyRequest",
    "SiteKeyVisit",
    "SiteState",
    "WindowDoc",
    "dump",
]

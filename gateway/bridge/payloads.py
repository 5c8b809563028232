"""Payload models of every MQTT message lockgate sends, and of the request envelope fields.

Each model is the contract of one topic of :mod:`gateway.bridge.topics`; the JSON Schemas in
``schemas/`` are generated from them. Outbound models are built by the gateway, never parsed
from the network, so they forbid extra fields to keep the schemas exact.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, RootModel

from gateway.domain.identifiers import Ident
from gateway.domain.locks import LockText
from gateway.domain.timeutil import UtcDateTime, WeeklySchedule

CredentialNumber = Annotated[str, Field(min_length=1, max_length=10, pattern=r"^\d+$")]


class Payload(BaseModel):
    """Base of every outbound payload."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


# ------------------------------------------------------------------ bridge and devices


class BridgeState(Payload):
    """Whether the gateway is connected to the broker (retained). ``offline`` is also the
    gateway's last will: the broker publishes it when the gateway disappears."""

    state: Literal["online", "offline"]
    """`online` once the gateway is connected and subscribed, `offline` when it stops or
    disappears."""
    instance: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] | None = None
    """Identifies one running gateway process (new at every start). A second gateway
    announcing itself online on the same topics is reported as a `gateway_conflict` event."""


class DeviceAvailability(Payload):
    """Whether a programming station or door controller is reachable (retained)."""

    state: Literal["online", "offline"]
    """`online`: the device answers; `offline`: it does not."""
    reason: Annotated[str, Field(max_length=200, description="Why, for people; may be empty.")]
    at: UtcDateTime = Field(description="When the gateway observed it.")


# ------------------------------------------------------------------ credential state


class StateWindow(Payload):
    """A validity window: from ``start`` (inclusive) to ``end`` (exclusive); ``null`` means
    unbounded."""

    start: UtcDateTime | None = Field(description="First instant of the window; null: always.")
    end: UtcDateTime | None = Field(description="First instant after the window; null: never.")


class SpaceGrant(Payload):
    """Access to one space in one window: the window is already clipped by everything that
    bounds it (the application entry, the agreement, the ID06 card, the competences the space
    requires, the key's validity)."""

    space: Ident = Field(description="Space id.")
    window: StateWindow
    """When: the window of this grant."""
    schedule: WeeklySchedule | None = Field(
        description="Weekly schedule (in the site's time zone) access is limited to inside "
        "the window; null: at any time of the week."
    )


class DesiredSummary(Payload):
    """The state the rules engine derived for the credential."""

    active: bool = Field(description="May open something right now.")
    enabled: bool = Field(description="Every condition that is not a time window holds.")
    revoked: bool = Field(description="Must be shut off (blocked, returned, lost, ...).")
    reasons: list[str] = Field(description="Reason codes why it is not active (empty if active).")
    window: StateWindow | None = Field(
        description="Overall validity: from the earliest start to the latest end of its "
        "grants; null when it has none."
    )
    revision: str = Field(description="Digest of everything a device must hold for it.")
    revalidation_days: int | None = Field(
        description="For a key: the days after each programming within which it must visit a "
        "station again, or it lapses; null for tags and visitor cards."
    )
    grants: list[SpaceGrant] = Field(
        description="Every space it may open, each with its own window, sorted by space and "
        "start. A space is listed more than once when its windows are disjoint or differ in "
        "schedule. Empty when it is not enabled."
    )


class ConfirmedState(Payload):
    """The revision a device last confirmed holding, and when."""

    revision: str
    """The desired revision the devices confirmed holding (equal to `desired.revision` when the
    devices hold what the rules derived)."""
    at: UtcDateTime
    """When the last confirmation this rests on was made."""


class RetainedCredentialState(Payload):
    """Retained state of one credential, keyed by its number only. ``pending`` is true while
    no device has confirmed the desired revision. An empty retained message on the topic means
    the credential no longer exists."""

    number: CredentialNumber
    """Credential number: a key serial (9 digits), a tag or a visitor card number."""
    kind: str = Field(description="key, tag or visitor_card.")
    desired: DesiredSummary
    """What the rules engine derived for it."""
    confirmed: ConfirmedState | None
    """What its devices confirmed holding; null while nothing is (see docs/mqtt.md for each
    kind)."""
    pending: bool
    """True while a device still has to change for it."""
    updated_at: UtcDateTime
    """When this state was published."""


# ------------------------------------------------------------------ responses


class FieldError(Payload):
    """One error found in a request: the offending field and why."""

    field: str | None = Field(
        description="Dotted path of the field (`application.entries.0.space_ids`), or null "
        "when the error is about the request as a whole."
    )
    message: str = Field(description="Why, in a sentence.")


class ErrorBody(Payload):
    """Why a request was refused: a stable ``code``, a sentence and the offending field of
    the first error, and every error found."""

    code: str = Field(
        description="INVALID, INVALID_JSON, PAYLOAD_TOO_LARGE, UNKNOWN_REQUEST, EXPIRED, "
        "STALE, NOT_FOUND, CONFLICT, ILLEGAL_TRANSITION, FORBIDDEN or INTERNAL."
    )
    message: str = Field(
        description="The first error, in a sentence; `(and N more)` when there are more."
    )
    field: str | None = Field(description="Dotted path of the first error's field, or null.")
    errors: list[FieldError] = Field(
        default_factory=list,
        max_length=20,
        description="Every error found, the first one first (at most 20). A refusal by the "
        "rules of the domain has one.",
    )


class Response(Payload):
    """The one response to a request. ``request_id`` is null only when the request's own
    could not be read (the payload was not JSON, too large, ...)."""

    request_id: str | None
    """The request's `request_id`; null only when it could not be read."""
    status: Literal["ok", "error"]
    """`ok` (applied, or applied before: a replay) or `error` (refused, nothing changed)."""
    data: dict[str, Any] = Field(description="What the change did (request specific).")
    error: ErrorBody | None
    """Why it was refused; null when `status` is `ok`."""


# ------------------------------------------------------------------ events


class EventBase(Payload):
    """Fields of every event. ``id`` is unique; ``seq`` increases with every event (gaps are
    normal). Events are delivered at least once: deduplicate by ``id``."""

    id: UUID
    """Unique id of the event: deduplicate by it."""
    seq: int = Field(ge=0)
    """Increases with every event (gaps are normal)."""
    kind: str
    """Which event this is; says which fields follow."""
    at: UtcDateTime
    """When the gateway recorded it."""


class CredentialRevokedBody(Payload):
    """What the sender of a :class:`CredentialRevoked` says; the gateway adds ``id``, ``seq`` and
    ``at``."""

    kind: Literal["credential_revoked"] = "credential_revoked"
    """Always `credential_revoked`."""
    number: CredentialNumber
    """The revoked credential."""
    credential_kind: str
    """`key`, `tag` or `visitor_card`."""
    reasons: list[str]
    """Reason codes why it is revoked (gateway/rules/reasons.py)."""
    revision: str
    """Its new desired revision, as in its credential state."""
    request_id: str | None = Field(default=None, description="The request that caused it.")
    command: str | None = Field(default=None, description="Its request name.")


class CredentialRevoked(CredentialRevokedBody, EventBase):
    """A credential's desired state became *revoked*: the devices must shut it off."""


class RevocationConfirmedBody(Payload):
    """What the sender of a :class:`RevocationConfirmed` says; the gateway adds ``id``, ``seq`` and
    ``at``."""

    kind: Literal["revocation_confirmed"] = "revocation_confirmed"
    """Always `revocation_confirmed`."""
    number: CredentialNumber
    """The revoked credential."""
    device_id: Ident
    """The station or controller that confirmed it."""
    revision: str
    """The credential's desired revision the device now holds."""


class RevocationConfirmed(RevocationConfirmedBody, EventBase):
    """A device confirmed holding a revoked credential's new state."""


class ProgrammingResultBody(Payload):
    """What the sender of a :class:`ProgrammingResult` says; the gateway adds ``id``, ``seq`` and
    ``at``."""

    kind: Literal["programming_result"] = "programming_result"
    """Always `programming_result`."""
    device_id: Ident
    """The station or controller written."""
    number: CredentialNumber | None = Field(
        default=None, description="The key programmed; null for a controller allow-list."
    )
    credential_revision: str | None = Field(
        default=None,
        description="For a key: the revision of its desired state that was written (on "
        "success) or was to be written (on failure), as in `desired.revision` of its "
        "credential state. Null for a controller allow-list.",
    )
    device_revision: str | None = Field(
        default=None,
        description="On success: the revision of what the device now holds, the key image "
        "(which also carries blacklists and a revalidation deadline) or the controller "
        "allow-list. Null when the attempt failed.",
    )
    ok: bool
    """Whether the write succeeded and was verified."""
    error: Annotated[str, Field(max_length=500)] | None = Field(
        default=None, description="Why the attempt failed; null on success."
    )


class ProgrammingResult(ProgrammingResultBody, EventBase):
    """A key or a controller was programmed (or the attempt failed). Two revisions, of two
    different things: ``credential_revision`` is the key's desired state (the ``revision`` of
    its credential state), ``device_revision`` what the device holds after the write (the key
    image or the controller allow-list)."""


class AccessEventBody(Payload):
    """What the sender of a :class:`AccessEvent` says; the gateway adds ``id``, ``seq`` and
    ``at``."""

    kind: Literal["access_granted", "access_denied"]
    """`access_granted` or `access_denied`."""
    number: CredentialNumber
    """The credential presented."""
    device_id: Ident
    """The controller that decided, or the station that collected the key's or cylinder's audit
    trail."""
    lock: LockText
    """The lock: `cylinder:NUMBER` (an offline cylinder) or `door:CONTROLLER/DOOR` (a door of
    a door controller)."""
    occurred_at: UtcDateTime
    """When the door or cylinder decided."""
    source: Literal["controller", "key_audit", "cylinder_audit"]
    """`controller`, `key_audit` (a key's trail) or `cylinder_audit` (a cylinder's trail,
    carried by a key)."""
    reason: Annotated[str, Field(max_length=200)] | None = None
    """Why it was denied, as the device said; null when granted or not said."""


class AccessEvent(AccessEventBody, EventBase):
    """A door or cylinder granted or denied a credential (controller events, key and
    cylinder audit trails)."""


class ExpiryWarningBody(Payload):
    """What the sender of a :class:`ExpiryWarning` says; the gateway adds ``id``, ``seq`` and
    ``at``."""

    kind: Literal["expiry_warning"] = "expiry_warning"
    """Always `expiry_warning`."""
    number: CredentialNumber
    """The credential."""
    expires_at: UtcDateTime
    """When it stops working unless renewed."""
    cause: Literal["validity", "revalidation", "id06_card", "competence", "agreement", "visitor"]
    """What expires: its `validity`, its `revalidation` deadline, the `id06_card`, a
    `competence`, the `agreement`, or the `visitor` card."""


class ExpiryWarning(ExpiryWarningBody, EventBase):
    """A credential stops working soon unless something is renewed."""


class DeviceEventBody(Payload):
    """What the sender of a :class:`DeviceEvent` says; the gateway adds ``id``, ``seq`` and
    ``at``."""

    kind: Literal[
        "door_forced",
        "door_held_open",
        "door_pulsed",
        "controller_memory_lost",
        "blacklist_confirmed",
        "device_error",
        "device_recovered",
        "controller_events_lost",
        "device_tamper",
        "device_tamper_cleared",
        "device_power_failure",
        "device_power_restored",
        "reader_offline",
        "reader_online",
    ]
    """What the device reported."""
    device_id: Ident
    """The device that reported it."""
    number: CredentialNumber | None = Field(default=None, description="The credential, if any.")
    lock: LockText | None = None
    """The lock concerned, if any: `cylinder:NUMBER` or `door:CONTROLLER/DOOR`."""
    occurred_at: UtcDateTime | None = None
    """When the device says it happened, if it says."""
    detail: Annotated[str, Field(max_length=200)] = ""
    """More about it, for people (`version=...`, `generation=...`); may be empty."""


class DeviceEvent(DeviceEventBody, EventBase):
    """Something a device reported that is not an access decision: a door forced or held
    open, a controller that lost its memory, a cylinder that applied a blacklist; or a
    device that answers but refuses what it is asked (``device_error``, ``detail`` says why;
    its availability stays online) and one that works again (``device_recovered``); events a
    controller lost before the gateway read them (``controller_events_lost``, ``detail``
    says which); a reader's or controller's tamper switch (``device_tamper``,
    ``device_tamper_cleared``), its power (``device_power_failure``,
    ``device_power_restored``), a reader that stopped or started answering its panel
    (``reader_offline``, ``reader_online``; ``lock`` is its door)."""


class GatewayConflictBody(Payload):
    """What the sender of a :class:`GatewayConflict` says; the gateway adds ``id``, ``seq`` and
    ``at``."""

    kind: Literal["gateway_conflict"] = "gateway_conflict"
    """Always `gateway_conflict`."""
    instance: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    """The reporting gateway's instance (as in its bridge state)."""
    other_instance: Annotated[str, Field(max_length=64)] | None
    """The other gateway's instance, when it said."""
    detail: Annotated[str, Field(max_length=200)] = ""
    """What was seen, for people."""


class GatewayConflict(GatewayConflictBody, EventBase):
    """Another gateway process announced itself online on this gateway's topics: two
    gateways would both apply every request (a deposed gateway still running, or two
    configured alike). The operator must stop one of them."""


class LeaderElectedBody(Payload):
    """What the sender of a :class:`LeaderElected` says; the gateway adds ``id``, ``seq`` and
    ``at``."""

    kind: Literal["leader_elected"] = "leader_elected"
    """Always `leader_elected`."""
    instance: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    """The new leader's instance (as in its bridge state)."""
    token: int = Field(ge=0)
    """Its fencing token: larger at every change of leader (0: a single core on SQLite)."""
    host: Annotated[str, Field(max_length=200)] = ""
    """Where it runs (host name and process id), for people."""
    previous_instance: Annotated[str, Field(max_length=64)] | None = None
    """The instance that held the lease before, if any."""
    standby_s: float = Field(default=0.0, ge=0)
    """How long the new leader waited as a standby before it took the lease."""
    console_url: Annotated[str, Field(max_length=500)] | None = None
    """The new leader's console (`web.public_url`, or the address it serves on), where
    people go now; null when it serves no console or its address is not known."""


class LeaderElected(LeaderElectedBody, EventBase):
    """A core instance became the leader (`lockgate run --role core`): from now on it alone
    answers requests and writes. Published by the new leader once it has loaded the site and
    taken over the gateway's MQTT session."""


class AuditAnchorBody(Payload):
    """What the sender of a :class:`AuditAnchor` says; the gateway adds ``id``, ``seq`` and
    ``at``."""

    kind: Literal["audit_anchor"] = "audit_anchor"
    """Always `audit_anchor`."""
    head_seq: int = Field(ge=0)
    """Sequence number of the newest audit entry."""
    head_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    """Its chain hash (SHA-256, hex)."""
    head_at: UtcDateTime
    """Its time."""


class AuditAnchor(AuditAnchorBody, EventBase):
    """The head of the tamper-evident audit log, published periodically: keep these to
    prove later that no entry up to ``head_seq`` was altered or removed."""


EVENT_MODELS: tuple[type[EventBase], ...] = (
    CredentialRevoked,
    RevocationConfirmed,
    ProgrammingResult,
    AccessEvent,
    ExpiryWarning,
    DeviceEvent,
    GatewayConflict,
    LeaderElected,
    AuditAnchor,
)


def _kinds(model: type[EventBase]) -> tuple[str, ...]:
    annotation = model.model_fields["kind"].annotation
    return tuple(getattr(annotation, "__args__", ()))


EVENT_KINDS: dict[str, type[EventBase]] = {k: m for m in EVENT_MODELS for k in _kinds(m)}
"""Every event kind and the model its payload follows."""

EventBody = (
    CredentialRevokedBody
    | RevocationConfirmedBody
    | ProgrammingResultBody
    | AccessEventBody
    | ExpiryWarningBody
    | DeviceEventBody
    | GatewayConflictBody
    | LeaderElectedBody
    | AuditAnchorBody
)
"""What a part of the gateway hands the outbox to announce an event (see
:meth:`gateway.bridge.outbound.StatePublisher.enqueue_event`)."""

AnyEvent = Annotated[
    CredentialRevoked
    | RevocationConfirmed
    | ProgrammingResult
    | AccessEvent
    | ExpiryWarning
    | DeviceEvent
    | GatewayConflict
    | LeaderElected
    | AuditAnchor,
    Field(discriminator="kind"),
]


class Event(RootModel[AnyEvent]):
    """One event of the events feed; ``kind`` says which fields follow."""


__all__ = [
    "EVENT_KINDS",
    "EVENT_MODELS",
    "AccessEvent",
    "AccessEventBody",
    "AuditAnchor",
    "AuditAnchorBody",
    "BridgeState",
    "ConfirmedState",
    "CredentialRevoked",
    "CredentialRevokedBody",
    "DesiredSummary",
    "DeviceAvailability",
    "DeviceEvent",
    "DeviceEventBody",
    "ErrorBody",
    "Event",
    "EventBase",
    "EventBody",
    "ExpiryWarning",
    "ExpiryWarningBody",
    "FieldError",
    "GatewayConflict",
    "GatewayConflictBody",
    "LeaderElected",
    "LeaderElectedBody",
    "Payload",
    "ProgrammingResult",
    "ProgrammingResultBody",
    "Response",
    "RetainedCredentialState",
    "RevocationConfirmed",
    "RevocationConfirmedBody",
    "SpaceGrant",
    "StateWindow",
]

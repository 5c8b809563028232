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
from gateway.domain.timeutil import UtcDateTime

CredentialNumber = Annotated[str, Field(min_length=1, max_length=10, pattern=r"^\d+$")]


class Payload(BaseModel):
    """Base of every outbound payload."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------ bridge and devices


class BridgeState(Payload):
    """Whether the gateway is connected to the broker (retained). ``offline`` is also the
    gateway's last will: the broker publishes it when the gateway disappears."""

    state: Literal["online", "offline"]
    instance: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] | None = Field(
        default=None,
        description="Identifies one running gateway process (new at every start). A second "
        "gateway announcing itself online on the same topics is reported as a "
        "gateway_conflict event.",
    )


class DeviceAvailability(Payload):
    """Whether a programming station or door controller is reachable (retained)."""

    state: Literal["online", "offline"]
    reason: Annotated[str, Field(max_length=200, description="Why, for people; may be empty.")]
    at: UtcDateTime = Field(description="When the gateway observed it.")


# ------------------------------------------------------------------ credential state


class StateWindow(Payload):
    """Overall validity of a credential: from ``start`` (inclusive) to ``end`` (exclusive);
    ``null`` means unbounded."""

    start: UtcDateTime | None
    end: UtcDateTime | None


class GrantsSummary(Payload):
    """What the credential may open: how many grants, over which spaces."""

    count: int = Field(ge=0)
    spaces: list[str] = Field(description="Space ids, sorted, each once.")


class DesiredSummary(Payload):
    """The state the rules engine derived for the credential."""

    active: bool = Field(description="May open something right now.")
    enabled: bool = Field(description="Every condition that is not a time window holds.")
    revoked: bool = Field(description="Must be shut off (blocked, returned, lost, ...).")
    reasons: list[str] = Field(description="Reason codes why it is not active (empty if active).")
    window: StateWindow | None
    revision: str = Field(description="Digest of everything a device must hold for it.")
    revalidation_days: int | None
    grants: GrantsSummary


class ConfirmedState(Payload):
    """The revision a device last confirmed holding, and when."""

    revision: str
    at: UtcDateTime


class CredentialState(Payload):
    """Retained state of one credential, keyed by its number only. ``pending`` is true while
    no device has confirmed the desired revision. An empty retained message on the topic means
    the credential no longer exists."""

    number: CredentialNumber
    kind: str = Field(description="key, tag or visitor_card.")
    desired: DesiredSummary
    confirmed: ConfirmedState | None
    pending: bool
    updated_at: UtcDateTime


# ------------------------------------------------------------------ responses


class ErrorBody(Payload):
    """Why a request was refused: a stable ``code``, a sentence, and the offending field."""

    code: str = Field(
        description="INVALID, INVALID_JSON, PAYLOAD_TOO_LARGE, UNKNOWN_REQUEST, EXPIRED, "
        "STALE, NOT_FOUND, CONFLICT, ILLEGAL_TRANSITION, FORBIDDEN or INTERNAL."
    )
    message: str
    field: str | None = Field(description="Dotted path of the field, or null.")


class Response(Payload):
    """The one response to a request. ``request_id`` is null only when the request's own
    could not be read (the payload was not JSON, too large, ...)."""

    request_id: str | None
    status: Literal["ok", "error"]
    data: dict[str, Any] = Field(description="What the change did (request specific).")
    error: ErrorBody | None


# ------------------------------------------------------------------ events


class EventBase(Payload):
    """Fields of every event. ``id`` is unique; ``seq`` increases with every event (gaps are
    normal). Events are delivered at least once: deduplicate by ``id``."""

    id: UUID
    seq: int = Field(ge=0)
    kind: str
    at: UtcDateTime


class CredentialRevoked(EventBase):
    """A credential's desired state became *revoked*: the devices must shut it off."""

    kind: Literal["credential_revoked"] = "credential_revoked"
    number: CredentialNumber
    credential_kind: str
    reasons: list[str]
    revision: str
    request_id: str | None = Field(default=None, description="The request that caused it.")
    command: str | None = Field(default=None, description="Its request name.")


class RevocationConfirmed(EventBase):
    """A device confirmed holding a revoked credential's new state."""

    kind: Literal["revocation_confirmed"] = "revocation_confirmed"
    number: CredentialNumber
    device_id: Ident
    revision: str


class ProgrammingResult(EventBase):
    """A key or a controller was programmed (or the attempt failed)."""

    kind: Literal["programming_result"] = "programming_result"
    device_id: Ident
    number: CredentialNumber | None = Field(
        default=None, description="The key programmed; null for a controller allow-list."
    )
    revision: str
    ok: bool
    error: Annotated[str, Field(max_length=500)] | None = None


class AccessEvent(EventBase):
    """A door or cylinder granted or denied a credential (controller events, key and
    cylinder audit trails)."""

    kind: Literal["access_granted", "access_denied"]
    number: CredentialNumber
    device_id: Ident
    lock: LockText = Field(
        description="The lock: cylinder:NUMBER (an offline cylinder) or door:CONTROLLER/DOOR "
        "(a door of a door controller)."
    )
    occurred_at: UtcDateTime
    source: Literal["controller", "key_audit", "cylinder_audit"]
    reason: Annotated[str, Field(max_length=200)] | None = None


class ExpiryWarning(EventBase):
    """A credential stops working soon unless something is renewed."""

    kind: Literal["expiry_warning"] = "expiry_warning"
    number: CredentialNumber
    expires_at: UtcDateTime
    cause: Literal["validity", "revalidation", "id06_card", "competence", "agreement", "visitor"]


class DeviceEvent(EventBase):
    """Something a device reported that is not an access decision: a door forced or held
    open, a controller that lost its memory, a cylinder that applied a blacklist; or a
    device that answers but refuses what it is asked (``device_error``, ``detail`` says why;
    its availability stays online) and one that works again (``device_recovered``)."""

    kind: Literal[
        "door_forced",
        "door_held_open",
        "door_pulsed",
        "controller_memory_lost",
        "blacklist_confirmed",
        "device_error",
        "device_recovered",
    ]
    device_id: Ident
    number: CredentialNumber | None = Field(default=None, description="The credential, if any.")
    lock: LockText | None = Field(
        default=None,
        description="The lock, if any: cylinder:NUMBER or door:CONTROLLER/DOOR.",
    )
    occurred_at: UtcDateTime | None = None
    detail: Annotated[str, Field(max_length=200)] = ""


class GatewayConflict(EventBase):
    """Another gateway process announced itself online on this gateway's topics: two
    gateways would both apply every request (a deposed gateway still running, or two
    configured alike). The operator must stop one of them."""

    kind: Literal["gateway_conflict"] = "gateway_conflict"
    instance: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] = Field(
        description="The reporting gateway's instance."
    )
    other_instance: Annotated[str, Field(max_length=64)] | None = Field(
        description="The other gateway's instance, when it said."
    )
    detail: Annotated[str, Field(max_length=200)] = ""


class AuditAnchor(EventBase):
    """The head of the tamper-evident audit log, published periodically: keep these to
    prove later that no entry up to ``head_seq`` was altered or removed."""

    kind: Literal["audit_anchor"] = "audit_anchor"
    head_seq: int = Field(ge=0)
    head_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    head_at: UtcDateTime


EVENT_MODELS: tuple[type[EventBase], ...] = (
    CredentialRevoked,
    RevocationConfirmed,
    ProgrammingResult,
    AccessEvent,
    ExpiryWarning,
    DeviceEvent,
    GatewayConflict,
    AuditAnchor,
)


def _kinds(model: type[EventBase]) -> tuple[str, ...]:
    annotation = model.model_fields["kind"].annotation
    return tuple(getattr(annotation, "__args__", ()))


EVENT_KINDS: dict[str, type[EventBase]] = {k: m for m in EVENT_MODELS for k in _kinds(m)}
"""Every event kind and the model its payload follows."""

AnyEvent = Annotated[
    CredentialRevoked
    | RevocationConfirmed
    | ProgrammingResult
    | AccessEvent
    | ExpiryWarning
    | DeviceEvent
    | GatewayConflict
    | AuditAnchor,
    Field(discriminator="kind"),
]


class Event(RootModel[AnyEvent]):
    """One event of the events feed; ``kind`` says which fields follow."""


__all__ = [
    "EVENT_KINDS",
    "EVENT_MODELS",
    "AccessEvent",
    "AuditAnchor",
    "BridgeState",
    "ConfirmedState",
    "CredentialRevoked",
    "CredentialState",
    "DesiredSummary",
    "DeviceAvailability",
    "DeviceEvent",
    "ErrorBody",
    "Event",
    "EventBase",
    "ExpiryWarning",
    "GatewayConflict",
    "GrantsSummary",
    "Payload",
    "ProgrammingResult",
    "Response",
    "RevocationConfirmed",
    "StateWindow",
]

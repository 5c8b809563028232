"""The facts of the domain, as immutable pydantic models.

A fact is something an outside system or an operator tells lockgate: an organisation signed
a key grant agreement, a person's ID06 card was blocked, an access application revision was
approved. The rules engine derives every credential's desired state from these facts alone.
Models validate their own fields; rules that span several facts (one key per employment, the
referenced employment exists) are checked by the command layer against the store.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.domain.identifiers import (
    CylinderId,
    Id06CardNumber,
    Ident,
    KeySerial,
    Mobile,
    Name,
    OrgNumber,
    RfidNumber,
)
from gateway.domain.timeutil import IsoDate, UtcDateTime, WeeklySchedule

PersonName = Annotated[Name, Field(min_length=1, max_length=100)]
CompetenceCode = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")]
Text = Annotated[Name, Field(min_length=1, max_length=200)]


class Fact(BaseModel):
    """Base of every fact: frozen, unknown fields refused."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, use_attribute_docstrings=True
    )


class Organisation(Fact):
    """A company or authority, identified by its Swedish organisation number."""

    org_number: OrgNumber
    """Swedish organisation number, `NNNNNN-NNNN` or ten digits; the last digit is a Luhn check
    digit."""
    name: Text
    """The organisation's name."""


class KeyGrantAgreement(Fact):
    """An organisation's key grant agreement ("upplåtelseavtal för nyckel").

    In force from ``valid_from`` through ``valid_until`` (inclusive, local dates) unless
    ``terminated_at`` lies before. Gives the organisation the right to order inactive keys;
    every key of the organisation's employments depends on it.
    """

    id: Ident
    """Agreement id, chosen by the sender."""
    org_number: OrgNumber
    """Organisation number of the organisation that signed it (registered before)."""
    signed_on: IsoDate
    """Day it was signed; not after `valid_from`."""
    valid_from: IsoDate
    """First day in force (local date)."""
    valid_until: IsoDate | None = None
    """Last day in force (local date, inclusive), not before `valid_from`; null: open-ended."""
    terminated_at: UtcDateTime | None = None
    """Instant it was terminated; every key and tag of the organisation stops working then.
    Null: not terminated."""

    @model_validator(mode="after")
    def _dates(self) -> Self:
        if self.valid_until is not None and self.valid_until < self.valid_from:
            raise ValueError("valid_until must not be before valid_from")
        if self.signed_on > self.valid_from:
            # An agreement can take effect at the earliest on the day it is signed.
            raise ValueError("valid_from must not be before signed_on")
        return self


class Person(Fact):
    """A person. Only what the seeds name: first and last name, optionally a mobile."""

    id: Ident
    """Person id, chosen by the sender."""
    first_name: PersonName
    """First name."""
    last_name: PersonName
    """Last name."""
    mobile: Mobile | None = None
    """Mobile number, 7 to 15 digits with an optional leading `+`; null: none."""


class Id06Status(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    TERMINATED = "terminated"


class Id06Card(BaseModel):
    """The ID06 card of one employment. ``blocked`` can be lifted, ``terminated`` cannot."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    card_number: Id06CardNumber
    """ID06 card number: 6 to 20 letters or digits (stored upper-case)."""
    valid_until: IsoDate
    """Last day the card is valid (local date)."""
    status: Id06Status = Id06Status.ACTIVE
    """`active`, `blocked` (can be lifted) or `terminated` (final)."""


ID06_TRANSITIONS: dict[Id06Status, frozenset[Id06Status]] = {
    Id06Status.ACTIVE: frozenset({Id06Status.ACTIVE, Id06Status.BLOCKED, Id06Status.TERMINATED}),
    Id06Status.BLOCKED: frozenset({Id06Status.ACTIVE, Id06Status.BLOCKED, Id06Status.TERMINATED}),
    Id06Status.TERMINATED: frozenset({Id06Status.TERMINATED}),
}


class Employment(Fact):
    """A person at an organisation, with the ID06 card registered for that employment.

    One ID06 registration per person and organisation: at most one employment per
    (person, organisation) pair.
    """

    id: Ident
    """Employment id, chosen by the sender."""
    person_id: Ident
    """The person employed (registered before)."""
    org_number: OrgNumber
    """Organisation number of the employer (registered before); one employment per person and
    organisation."""
    id06: Id06Card
    """The ID06 card registered for this employment."""


class Competence(Fact):
    """A vocational certificate of a person (code such as ``ELSAK``), valid through a date."""

    person_id: Ident
    """The person holding it (registered before)."""
    code: CompetenceCode
    """Competence code such as `ELSAK` (letters, digits, `_`, `.`, `-`; stored upper-case)."""
    valid_until: IsoDate
    """Last day it is valid (local date)."""

    @field_validator("code")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.upper()


class DoorRef(BaseModel):
    """A door: its number (1..16) on a door controller."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    controller_id: Ident
    """Door controller id from the gateway configuration."""
    door: Annotated[int, Field(ge=1, le=16)]
    """Door number on the controller, 1 to 16."""


class Space(Fact):
    """A named set of offline cylinders and controller doors ("utrymme").

    ``required_competences`` must all be held (and valid) by a person for the space to be
    granted; ``revalidation_days`` makes keys with this space lapse unless updated at a
    programming station within that many days.
    """

    id: Ident
    """Space id, chosen by the sender."""
    name: Text
    """The space's name."""
    cylinders: tuple[CylinderId, ...] = Field(default=(), json_schema_extra={"uniqueItems": True})
    """Offline cylinders of the space: hardware numbers, each once."""
    doors: tuple[DoorRef, ...] = Field(default=(), json_schema_extra={"uniqueItems": True})
    """Controller doors of the space, each once."""
    required_competences: tuple[CompetenceCode, ...] = Field(
        default=(), json_schema_extra={"uniqueItems": True}
    )
    """Competence codes a person must hold (and be valid) to be granted the space."""
    revalidation_days: Annotated[int, Field(ge=1, le=365)] | None = None
    """Keys with this space lapse unless updated at a programming station within this many days
    (1 to 365); null: the site default."""

    @field_validator("cylinders")
    @classmethod
    def _unique_cylinders(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError("a cylinder is listed twice")
        return tuple(sorted(v, key=int))

    @field_validator("doors")
    @classmethod
    def _unique_doors(cls, v: tuple[DoorRef, ...]) -> tuple[DoorRef, ...]:
        if len({(d.controller_id, d.door) for d in v}) != len(v):
            raise ValueError("a door is listed twice")
        return tuple(sorted(v, key=lambda d: (d.controller_id, d.door)))

    @field_validator("required_competences")
    @classmethod
    def _codes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted({c.strip().upper() for c in v if c.strip()}))


class Assignment(Fact):
    """An assignment ("uppdrag"): a contract with a main contractor, run by a project manager
    of the owner, over a period. Access applications belong to an assignment."""

    id: Ident
    """Assignment id, chosen by the sender."""
    name: Text
    """The assignment's name."""
    main_contractor: OrgNumber
    """Organisation number of the main contractor (registered before)."""
    project_manager: PersonName
    """The owner's project manager who approves its applications."""
    starts_on: IsoDate
    """First day (local date)."""
    ends_on: IsoDate
    """Last day (local date), not before `starts_on`."""

    @model_validator(mode="after")
    def _period(self) -> Self:
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on must not be before starts_on")
        return self


class ApplicationStatus(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class ApplicationEntry(BaseModel):
    """One line of an access application: an employment, the spaces it needs, from/until
    (local dates, inclusive) and an optional weekly schedule."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    employment_id: Ident
    """The employment granted access (registered before); once per application."""
    space_ids: tuple[Ident, ...] = Field(min_length=1, json_schema_extra={"uniqueItems": True})
    """The spaces it needs (registered before), each once."""
    valid_from: IsoDate
    """First day (local date)."""
    valid_until: IsoDate
    """Last day (local date, inclusive), not before `valid_from`."""
    schedule: WeeklySchedule | None = None
    """Weekly schedule access is limited to; null: any time."""

    @model_validator(mode="after")
    def _period(self) -> Self:
        if self.valid_until < self.valid_from:
            raise ValueError("valid_until must not be before valid_from")
        if len(set(self.space_ids)) != len(self.space_ids):
            raise ValueError("a space is listed twice")
        return self


class AccessApplication(Fact):
    """A revision of the access application ("tillträdesansökan") of an assignment.

    Revisions increase monotonically per assignment. The latest *approved* revision is
    authoritative and fully replaces every earlier one; submitted, rejected and withdrawn
    revisions grant nothing.
    """

    model_config = ConfigDict(
        json_schema_extra={
            # A decision needs its instant: JSON Schema says so with if/then.
            "if": {
                "properties": {"status": {"enum": ["approved", "rejected"]}},
                "required": ["status"],
            },
            "then": {
                "properties": {"decided_at": {"type": "string"}},
                "required": ["decided_at"],
            },
        }
    )

    assignment_id: Ident
    """The assignment it belongs to (registered before)."""
    revision: Annotated[int, Field(ge=1, le=2_147_483_647)]
    """Revision number, increasing per assignment; an older one than the stored latest is
    refused as STALE."""
    status: ApplicationStatus
    """`submitted`, `approved`, `rejected` or `withdrawn`. The latest approved revision grants
    access."""
    expedited: bool = False
    """Expedited handling asked for."""
    submitted_at: UtcDateTime
    """Instant it was submitted."""
    decided_at: UtcDateTime | None = None
    """Instant of the decision, not before `submitted_at`; required when the status is
    `approved` or `rejected`."""
    entries: tuple[ApplicationEntry, ...] = ()
    """Who needs which spaces, when: one entry per employment."""

    @model_validator(mode="after")
    def _decision(self) -> Self:
        decided = self.status in (ApplicationStatus.APPROVED, ApplicationStatus.REJECTED)
        if decided and self.decided_at is None:
            raise ValueError("decided_at is required when the status is approved or rejected")
        if self.decided_at is not None and self.decided_at < self.submitted_at:
            raise ValueError("decided_at must not be before submitted_at")
        seen: set[str] = set()
        for e in self.entries:
            if e.employment_id in seen:
                raise ValueError(
                    f"employment {e.employment_id} has two entries; merge its spaces into one"
                )
            seen.add(e.employment_id)
        return self


class CredentialKind(StrEnum):
    KEY = "key"
    TAG = "tag"
    VISITOR_CARD = "visitor_card"


class CredentialState(StrEnum):
    DELIVERED = "delivered"
    HANDED_OUT = "handed_out"
    IN_SERVICE = "in_service"
    RETURNED = "returned"
    LOST = "lost"
    BROKEN = "broken"
    DESTROYED = "destroyed"
    REPLACED = "replaced"


TERMINAL_STATES = frozenset(
    {
        CredentialState.RETURNED,
        CredentialState.LOST,
        CredentialState.BROKEN,
        CredentialState.DESTROYED,
        CredentialState.REPLACED,
    }
)

_ENDINGS = TERMINAL_STATES - {CredentialState.REPLACED}

CREDENTIAL_TRANSITIONS: dict[CredentialState, frozenset[CredentialState]] = {
    CredentialState.DELIVERED: frozenset({CredentialState.HANDED_OUT} | _ENDINGS),
    CredentialState.HANDED_OUT: frozenset({CredentialState.IN_SERVICE} | TERMINAL_STATES),
    CredentialState.IN_SERVICE: TERMINAL_STATES,
    **{s: frozenset() for s in TERMINAL_STATES},
}
"""Allowed lifecycle transitions. ``delivered`` keys are inactive; ``handed_out`` links the
credential to an employment and produces a receipt; signing the receipt puts it
``in_service``. Terminal states never change again."""


class Credential(Fact):
    """A physical credential: a CLIQ-style key (9-digit serial), an RFID tag or a visitor card.

    Credentials are identified by ``number``, unique across kinds. ``employment_id`` is set
    from hand-out on (keys and tags); visitor cards carry a :class:`VisitorCard` instead.
    ``hr_approved_at`` records HR's approval of an employee tag, which gates its activation.
    """

    number: Annotated[str, Field(min_length=1, max_length=10, pattern=r"^\d+$")]
    kind: CredentialKind
    state: CredentialState = CredentialState.DELIVERED
    employment_id: Ident | None = None
    order_id: Ident | None = None
    replaced_by: Annotated[str, Field(pattern=r"^\d+$")] | None = None
    hr_approved_at: UtcDateTime | None = None
    state_changed_at: UtcDateTime | None = None

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.kind is CredentialKind.KEY:
            if len(self.number) != 9:
                raise ValueError("a key serial number is exactly 9 digits")
        elif not (0 < int(self.number) <= 0xFFFFFFFF) or self.number != str(int(self.number)):
            raise ValueError("an RFID credential number is 1..4294967295 without leading zeros")
        linked = self.state in (CredentialState.HANDED_OUT, CredentialState.IN_SERVICE)
        if linked and self.kind is not CredentialKind.VISITOR_CARD and self.employment_id is None:
            raise ValueError("a handed-out key or tag must name its employment_id")
        if self.state is CredentialState.DELIVERED and self.employment_id is not None:
            raise ValueError("a delivered (inactive, in stock) credential has no employment")
        if self.replaced_by is not None and self.state is not CredentialState.REPLACED:
            raise ValueError("replaced_by is only set on a replaced credential")
        return self

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def can_become(self, new: CredentialState) -> bool:
        return new in CREDENTIAL_TRANSITIONS[self.state]


class KeyOrderStatus(StrEnum):
    PLACED = "placed"
    PARTLY_DELIVERED = "partly_delivered"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class KeyOrder(Fact):
    """A key order ("behovsanmälan"): one organisation orders N inactive keys to an address.
    Orders may come in several rounds."""

    id: Ident
    """Order id, chosen by the sender."""
    org_number: OrgNumber
    """Organisation number of the ordering organisation (registered, with an agreement in force)."""
    quantity: Annotated[int, Field(ge=1, le=10000)]
    """Number of keys ordered, 1 to 10000."""
    delivery_address: Annotated[Name, Field(min_length=1, max_length=300)]
    """Where the keys are to be delivered."""
    status: KeyOrderStatus = KeyOrderStatus.PLACED
    """`placed` when ordering; `partly_delivered`, `delivered` and `cancelled` follow."""
    ordered_at: UtcDateTime
    """Instant it was ordered."""


class DeliveryManifest(Fact):
    """The delivery manifest ("förteckning över utdelade nycklar") of one delivery against an
    order: the serial numbers of the keys delivered, all inactive."""

    order_id: Ident
    """The key order delivered against (registered before)."""
    delivered_at: UtcDateTime
    """Instant of the delivery."""
    key_serials: tuple[KeySerial, ...] = Field(
        min_length=1, json_schema_extra={"uniqueItems": True}
    )
    """Serial numbers (9 digits) of the keys delivered, each once, none registered before."""

    @field_validator("key_serials")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for s in v:
            if s in seen:
                raise ValueError(f"key {s} is listed twice")
            seen.add(s)
        return v


class Receipt(Fact):
    """A key handout receipt ("kvitto på utlämnad nyckel"): produced when a credential is
    linked to an employment, signed by the holder. Signing puts the credential in service."""

    credential_number: Annotated[str, Field(pattern=r"^\d+$")]
    employment_id: Ident
    produced_at: UtcDateTime
    signed_at: UtcDateTime | None = None

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.signed_at is not None and self.signed_at < self.produced_at:
            raise ValueError("signed_at must not be before produced_at")
        return self


class VisitorReason(StrEnum):
    FORGOT_CARD = "forgot_card"
    NEW_EMPLOYEE = "new_employee"
    SUPPLIER = "supplier"


ERASED = "[erased]"
"""Tombstone that replaces a returned visitor's personal data."""


class VisitorCard(Fact):
    """A visitor or temporary card ("besøkskort"). Always expires at ``valid_until``
    (date and time); always has a sponsor (an employment that vouches for the holder)."""

    number: RfidNumber
    holder_name: Annotated[Name, Field(min_length=1, max_length=200)]
    company: Annotated[Name, Field(min_length=1, max_length=200)]
    mobile: Mobile | Literal["[erased]"]
    sponsor_employment_id: Ident
    reason: VisitorReason
    space_ids: tuple[Ident, ...] = Field(min_length=1)
    valid_from: UtcDateTime
    valid_until: UtcDateTime
    issued_at: UtcDateTime
    returned_at: UtcDateTime | None = None
    erased: bool = False

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if self.erased and not (self.holder_name == self.company == self.mobile == ERASED):
            raise ValueError("an erased visitor card keeps no personal data")
        return self


FACT_TYPES: tuple[type[Fact], ...] = (
    Organisation,
    KeyGrantAgreement,
    Person,
    Employment,
    Competence,
    Space,
    Assignment,
    AccessApplication,
    Credential,
    KeyOrder,
    DeliveryManifest,
    Receipt,
    VisitorCard,
)


def fact_key(fact: Fact) -> tuple[str, ...]:
    """The identity of a fact within its type (what a later fact of the same type replaces)."""
    match fact:
        case Organisation():
            return (fact.org_number,)
        case Competence():
            return (fact.person_id, fact.code)
        case AccessApplication():
            return (fact.assignment_id, str(fact.revision))
        case Credential() | VisitorCard():
            return (fact.number,)
        case DeliveryManifest():
            return (fact.order_id, fact.delivered_at.isoformat())
        case Receipt():
            return (fact.credential_number, fact.employment_id)
        case KeyGrantAgreement() | Person() | Employment() | Space() | Assignment() | KeyOrder():
            return (fact.id,)
    raise TypeError(f"not a fact: {type(fact).__name__}")

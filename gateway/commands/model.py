"""Commands: every change of a fact that lockgate accepts, as typed, validated models.

A command is what a central system publishes over MQTT, what a CLI command or a file import
builds, and what the audit log records. Each has a stable ``name`` (the MQTT request name) and
an ``action`` (what an operator's role must allow). Commands validate their own fields; rules
that need stored facts are checked by :mod:`gateway.commands.handlers`.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.domain.facts import (
    AccessApplication,
    Assignment,
    Competence,
    CompetenceCode,
    DeliveryManifest,
    Employment,
    KeyGrantAgreement,
    KeyOrder,
    Organisation,
    Person,
    Space,
    VisitorReason,
)
from gateway.domain.identifiers import (
    Id06CardNumber,
    Ident,
    KeySerial,
    Mobile,
    Name,
    RfidNumber,
)
from gateway.domain.timeutil import UtcDateTime

CredentialNumber = Annotated[str, Field(min_length=1, max_length=10, pattern=r"^[0-9]+$")]


class Command(BaseModel):
    """Base of every command. ``name`` is the request name on MQTT; ``action`` the permission
    an operator's role needs; ``revokes`` marks commands that can only take access away (they
    jump every queue)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, use_attribute_docstrings=True
    )

    name: ClassVar[str]
    action: ClassVar[str]
    revokes: ClassVar[bool] = False
    summary: ClassVar[str] = ""


# ------------------------------------------------------------------ master data


class PutOrganisation(Command):
    name = "organisation"
    action = "manage_master_data"
    summary = "Register or rename an organisation."
    organisation: Organisation
    """The organisation."""


class PutAgreement(Command):
    name = "agreement"
    action = "manage_master_data"
    summary = "Register, change or terminate a key grant agreement."
    agreement: KeyGrantAgreement
    """The agreement (a new one, or a change of a stored one of the same organisation)."""


class PutPerson(Command):
    name = "person"
    action = "manage_master_data"
    summary = "Register a person or correct their name or mobile."
    person: Person
    """The person."""


class PutEmployment(Command):
    name = "employment"
    action = "manage_master_data"
    summary = "Register an employment with its ID06 card, or update the card."
    employment: Employment
    """The employment and its ID06 card."""


class BlockId06(Command):
    name = "id06_block"
    action = "block_id06"
    revokes = True
    summary = "Block an ID06 card (blocking-register feed): every credential of it is revoked."
    card_number: Id06CardNumber
    """The blocked ID06 card (registered to an employment)."""
    reason: Annotated[str, Field(max_length=200, pattern=r"^[^\x00-\x08\x0a-\x1f]*$")] = ""
    """Why, for people (at most 200 characters)."""
    terminate: bool = False
    """The card is terminated for good (it can then never be unblocked)."""


class UnblockId06(Command):
    name = "id06_unblock"
    action = "block_id06"
    summary = "Lift the block of an ID06 card (a terminated card cannot be unblocked)."
    card_number: Id06CardNumber
    """The ID06 card (registered to an employment, not terminated)."""


class PutCompetence(Command):
    name = "competence"
    action = "manage_master_data"
    summary = "Register or renew a person's competence."
    competence: Competence
    """The competence."""


class RemoveCompetence(Command):
    name = "competence_remove"
    action = "manage_master_data"
    revokes = True
    summary = "Withdraw a person's competence."
    person_id: Ident
    """The person."""
    code: CompetenceCode
    """The competence code the person holds."""


class PutSpace(Command):
    name = "space"
    action = "manage_spaces"
    summary = "Register or change a space: its cylinders, doors and required competences."
    space: Space
    """The space."""


class PutAssignment(Command):
    name = "assignment"
    action = "manage_master_data"
    summary = "Register or change an assignment."
    assignment: Assignment
    """The assignment."""


class PutApplication(Command):
    name = "application"
    action = "decide_applications"
    summary = (
        "Submit an access application revision, or record its decision (approved, rejected, "
        "withdrawn). The latest approved revision replaces every earlier one."
    )
    application: AccessApplication
    """The application revision."""


# ------------------------------------------------------------------ keys and credentials


class PlaceKeyOrder(Command):
    name = "key_order"
    action = "issue_credentials"
    summary = "Place a key order (behovsanmälan) for an organisation with an agreement."
    order: KeyOrder
    """The order."""


class RegisterDelivery(Command):
    name = "delivery"
    action = "issue_credentials"
    summary = "Register a delivery manifest: the delivered keys, all inactive."
    manifest: DeliveryManifest
    """The delivery manifest."""


class RegisterTags(Command):
    name = "tags"
    action = "issue_credentials"
    summary = "Register RFID tags (employee cards) in stock, inactive."
    numbers: Annotated[
        tuple[RfidNumber, ...],
        Field(min_length=1, max_length=10000, json_schema_extra={"uniqueItems": True}),
    ]
    """Tag numbers (1 to 4294967295), each once, none registered before."""


class HandOut(Command):
    name = "handout"
    action = "link_credentials"
    summary = "Link a delivered key or tag to an employment; produces the handout receipt."
    credential_number: CredentialNumber
    """The delivered key (9 digits) or tag number."""
    employment_id: Ident
    """The employment it is handed out to (with an active ID06 card and no other live
    credential of the kind)."""
    at: UtcDateTime | None = None
    """Instant of the hand-out; null: when the gateway applies it."""


class SignReceipt(Command):
    name = "receipt_signed"
    action = "link_credentials"
    summary = "Record that the holder signed the handout receipt: the credential goes in service."
    credential_number: CredentialNumber
    """The handed-out key or tag."""
    signed_at: UtcDateTime | None = None
    """Instant the receipt was signed, not before it was produced; null: when the gateway
    applies it."""


class ApproveEmployeeCard(Command):
    name = "hr_approval"
    action = "approve_employee_cards"
    summary = "HR approves an employee card (tag) so that it can be activated."
    credential_number: CredentialNumber
    """The employee card (tag)."""
    at: UtcDateTime | None = None
    """Instant of the approval; null: when the gateway applies it."""


ReportedOutcome = Literal["returned", "lost", "broken", "destroyed"]


class ReportCredential(Command):
    name = "credential_report"
    action = "change_credentials"
    revokes = True
    summary = "Report a credential returned, lost, broken or destroyed: it is revoked at once."
    credential_number: CredentialNumber
    """The key, tag or visitor card."""
    outcome: ReportedOutcome
    """What happened to it: `returned`, `lost`, `broken` or `destroyed`."""
    at: UtcDateTime | None = None
    """When; null: when the gateway applies it."""


class ReplaceKey(Command):
    name = "key_replace"
    action = "link_credentials"
    revokes = True
    summary = (
        "Replace a key: the new (delivered) key takes over the employment, the old one is "
        "revoked. The old key's outcome (lost, broken, ...) is recorded."
    )
    old_number: KeySerial
    """The handed-out key replaced (9 digits)."""
    new_number: KeySerial
    """The delivered key that takes over (9 digits)."""
    old_outcome: Literal["lost", "broken", "destroyed", "returned", "replaced"] = "replaced"
    """What happened to the old key: `lost`, `broken`, `destroyed`, `returned` or `replaced`."""
    at: UtcDateTime | None = None
    """When; null: when the gateway applies it."""


class IssueVisitorCard(Command):
    name = "visitor_card_issue"
    action = "issue_credentials"
    summary = (
        "Issue a visitor or temporary card with a sponsor and an expiry date and time. The "
        "holder must be present in person and acknowledge the duty to return it."
    )
    number: RfidNumber
    """The card's number (1 to 4294967295), not registered before."""
    holder_name: Annotated[Name, Field(min_length=1, max_length=200)]
    """The holder's name (erased when the card is returned)."""
    company: Annotated[Name, Field(min_length=1, max_length=200)]
    """The holder's company (erased when the card is returned)."""
    mobile: Mobile
    """The holder's mobile number, 7 to 15 digits with an optional leading `+` (erased when the
    card is returned)."""
    sponsor_employment_id: Ident
    """The employment of the contact person who vouches for the holder (registered before)."""
    reason: VisitorReason
    """`forgot_card` (valid at most to the end of the working day), `new_employee` or `supplier`."""
    space_ids: Annotated[tuple[Ident, ...], Field(min_length=1)]
    """The spaces it opens (registered, with controller doors)."""
    valid_until: UtcDateTime
    """Instant it expires; after `valid_from` (whole seconds)."""
    valid_from: UtcDateTime | None = None
    """Instant it starts; null: when the gateway applies it."""
    confirmed_in_person: Literal[True]
    """The holder appeared in person (must be true)."""
    return_duty_acknowledged: Literal[True]
    """The holder was told to return it (must be true)."""


class ChangeVisitorCard(Command):
    name = "visitor_card_change"
    action = "change_credentials"
    summary = "Extend or shorten a visitor card's validity."
    number: RfidNumber
    """The visitor card (issued, not returned)."""
    valid_until: UtcDateTime
    """The new expiry instant, after the card's start."""


class ReturnVisitorCard(Command):
    name = "visitor_card_return"
    action = "change_credentials"
    revokes = True
    summary = "Take a visitor card back: it is revoked and its holder's personal data erased."
    number: RfidNumber
    """The visitor card (issued, not returned)."""
    at: UtcDateTime | None = None
    """When; null: when the gateway applies it."""
    lost: bool = False
    """The card was lost rather than returned."""


COMMANDS: tuple[type[Command], ...] = (
    PutOrganisation,
    PutAgreement,
    PutPerson,
    PutEmployment,
    BlockId06,
    UnblockId06,
    PutCompetence,
    RemoveCompetence,
    PutSpace,
    PutAssignment,
    PutApplication,
    PlaceKeyOrder,
    RegisterDelivery,
    RegisterTags,
    HandOut,
    SignReceipt,
    ApproveEmployeeCard,
    ReportCredential,
    ReplaceKey,
    IssueVisitorCard,
    ChangeVisitorCard,
    ReturnVisitorCard,
)

COMMANDS_BY_NAME: dict[str, type[Command]] = {c.name: c for c in COMMANDS}

__all__ = [
    "COMMANDS",
    "COMMANDS_BY_NAME",
    "ApproveEmployeeCard",
    "BlockId06",
    "ChangeVisitorCard",
    "Command",
    "HandOut",
    "IssueVisitorCard",
    "PlaceKeyOrder",
    "PutAgreement",
    "PutApplication",
    "PutAssignment",
    "PutCompetence",
    "PutEmployment",
    "PutOrganisation",
    "PutPerson",
    "PutSpace",
    "RegisterDelivery",
    "RegisterTags",
    "RemoveCompetence",
    "ReplaceKey",
    "ReportCredential",
    "ReturnVisitorCard",
    "SignReceipt",
    "UnblockId06",
]

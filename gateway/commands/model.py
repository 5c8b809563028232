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
    RfidNumber,
)
from gateway.domain.timeutil import UtcDateTime

CredentialNumber = Annotated[str, Field(min_length=1, max_length=10, pattern=r"^\d+$")]


class Command(BaseModel):
    """Base of every command. ``name`` is the request name on MQTT; ``action`` the permission
    an operator's role needs; ``revokes`` marks commands that can only take access away (they
    jump every queue)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

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


class PutAgreement(Command):
    name = "agreement"
    action = "manage_master_data"
    summary = "Register, change or terminate a key grant agreement."
    agreement: KeyGrantAgreement


class PutPerson(Command):
    name = "person"
    action = "manage_master_data"
    summary = "Register a person or correct their name or mobile."
    person: Person


class PutEmployment(Command):
    name = "employment"
    action = "manage_master_data"
    summary = "Register an employment with its ID06 card, or update the card."
    employment: Employment


class BlockId06(Command):
    name = "id06_block"
    action = "block_id06"
    revokes = True
    summary = "Block an ID06 card (blocking-register feed): every credential of it is revoked."
    card_number: Id06CardNumber
    reason: Annotated[str, Field(max_length=200)] = ""
    terminate: bool = False


class UnblockId06(Command):
    name = "id06_unblock"
    action = "block_id06"
    summary = "Lift the block of an ID06 card (a terminated card cannot be unblocked)."
    card_number: Id06CardNumber


class PutCompetence(Command):
    name = "competence"
    action = "manage_master_data"
    summary = "Register or renew a person's competence."
    competence: Competence


class RemoveCompetence(Command):
    name = "competence_remove"
    action = "manage_master_data"
    revokes = True
    summary = "Withdraw a person's competence."
    person_id: Ident
    code: Annotated[str, Field(min_length=1, max_length=40)]


class PutSpace(Command):
    name = "space"
    action = "manage_spaces"
    summary = "Register or change a space: its cylinders, doors and required competences."
    space: Space


class PutAssignment(Command):
    name = "assignment"
    action = "manage_master_data"
    summary = "Register or change an assignment."
    assignment: Assignment


class PutApplication(Command):
    name = "application"
    action = "decide_applications"
    summary = (
        "Submit an access application revision, or record its decision (approved, rejected, "
        "withdrawn). The latest approved revision replaces every earlier one."
    )
    application: AccessApplication


# ------------------------------------------------------------------ keys and credentials


class PlaceKeyOrder(Command):
    name = "key_order"
    action = "issue_credentials"
    summary = "Place a key order (behovsanmälan) for an organisation with an agreement."
    order: KeyOrder


class RegisterDelivery(Command):
    name = "delivery"
    action = "issue_credentials"
    summary = "Register a delivery manifest: the delivered keys, all inactive."
    manifest: DeliveryManifest


class RegisterTags(Command):
    name = "tags"
    action = "issue_credentials"
    summary = "Register RFID tags (employee cards) in stock, inactive."
    numbers: Annotated[tuple[RfidNumber, ...], Field(min_length=1, max_length=10000)]


class HandOut(Command):
    name = "handout"
    action = "link_credentials"
    summary = "Link a delivered key or tag to an employment; produces the handout receipt."
    credential_number: CredentialNumber
    employment_id: Ident
    at: UtcDateTime | None = None


class SignReceipt(Command):
    name = "receipt_signed"
    action = "link_credentials"
    summary = "Record that the holder signed the handout receipt: the credential goes in service."
    credential_number: CredentialNumber
    signed_at: UtcDateTime | None = None


class ApproveEmployeeCard(Command):
    name = "hr_approval"
    action = "approve_employee_cards"
    summary = "HR approves an employee card (tag) so that it can be activated."
    credential_number: CredentialNumber
    at: UtcDateTime | None = None


Outcome = Literal["returned", "lost", "broken", "destroyed"]


class ReportCredential(Command):
    name = "credential_report"
    action = "change_credentials"
    revokes = True
    summary = "Report a credential returned, lost, broken or destroyed: it is revoked at once."
    credential_number: CredentialNumber
    outcome: Outcome
    at: UtcDateTime | None = None


class ReplaceKey(Command):
    name = "key_replace"
    action = "link_credentials"
    revokes = True
    summary = (
        "Replace a key: the new (delivered) key takes over the employment, the old one is "
        "revoked. The old key's outcome (lost, broken, ...) is recorded."
    )
    old_number: KeySerial
    new_number: KeySerial
    old_outcome: Literal["lost", "broken", "destroyed", "returned", "replaced"] = "replaced"
    at: UtcDateTime | None = None


class IssueVisitorCard(Command):
    name = "visitor_card_issue"
    action = "issue_credentials"
    summary = (
        "Issue a visitor or temporary card with a sponsor and an expiry date and time. The "
        "holder must be present in person and acknowledge the duty to return it."
    )
    number: RfidNumber
    holder_name: Annotated[str, Field(min_length=1, max_length=200)]
    company: Annotated[str, Field(min_length=1, max_length=200)]
    mobile: Mobile
    sponsor_employment_id: Ident
    reason: VisitorReason
    space_ids: Annotated[tuple[Ident, ...], Field(min_length=1)]
    valid_until: UtcDateTime
    valid_from: UtcDateTime | None = None
    confirmed_in_person: Literal[True]
    return_duty_acknowledged: Literal[True]


class ChangeVisitorCard(Command):
    name = "visitor_card_change"
    action = "change_credentials"
    summary = "Extend or shorten a visitor card's validity."
    number: RfidNumber
    valid_until: UtcDateTime


class ReturnVisitorCard(Command):
    name = "visitor_card_return"
    action = "change_credentials"
    revokes = True
    summary = "Take a visitor card back: it is revoked and its holder's personal data erased."
    number: RfidNumber
    at: UtcDateTime | None = None
    lost: bool = False


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

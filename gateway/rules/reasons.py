"""Reason codes: why a credential is not active, or why a lock is not granted.

Codes are stable strings used in MQTT payloads, reports and ``explain`` output; the text is
for people. Add new codes at the end; never reuse or rename one.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    CREDENTIAL_UNKNOWN = "CREDENTIAL_UNKNOWN"
    CREDENTIAL_REVOKED = "CREDENTIAL_REVOKED"
    NOT_HANDED_OUT = "NOT_HANDED_OUT"
    RECEIPT_UNSIGNED = "RECEIPT_UNSIGNED"
    HR_APPROVAL_MISSING = "HR_APPROVAL_MISSING"
    NO_EMPLOYMENT = "NO_EMPLOYMENT"
    NO_AGREEMENT = "NO_AGREEMENT"
    AGREEMENT_NOT_STARTED = "AGREEMENT_NOT_STARTED"
    AGREEMENT_ENDED = "AGREEMENT_ENDED"
    ID06_BLOCKED = "ID06_BLOCKED"
    ID06_TERMINATED = "ID06_TERMINATED"
    ID06_EXPIRED = "ID06_EXPIRED"
    NO_APPROVED_APPLICATION = "NO_APPROVED_APPLICATION"
    APPLICATION_NOT_STARTED = "APPLICATION_NOT_STARTED"
    APPLICATION_ENDED = "APPLICATION_ENDED"
    ASSIGNMENT_ENDED = "ASSIGNMENT_ENDED"
    SPACE_UNKNOWN = "SPACE_UNKNOWN"
    COMPETENCE_MISSING = "COMPETENCE_MISSING"
    COMPETENCE_EXPIRED = "COMPETENCE_EXPIRED"
    VISITOR_NOT_STARTED = "VISITOR_NOT_STARTED"
    VISITOR_EXPIRED = "VISITOR_EXPIRED"
    SPONSOR_MISSING = "SPONSOR_MISSING"
    LOCK_UNKNOWN = "LOCK_UNKNOWN"
    LOCK_NOT_GRANTED = "LOCK_NOT_GRANTED"
    LOCK_KIND_MISMATCH = "LOCK_KIND_MISMATCH"
    OUTSIDE_WINDOW = "OUTSIDE_WINDOW"
    OUTSIDE_SCHEDULE = "OUTSIDE_SCHEDULE"
    BLACKLISTED = "BLACKLISTED"
    ASSIGNMENT_UNKNOWN = "ASSIGNMENT_UNKNOWN"


DESCRIPTIONS: dict[Reason, str] = {
    Reason.CREDENTIAL_UNKNOWN: "no credential with this number is registered",
    Reason.CREDENTIAL_REVOKED: "the credential was returned, lost, broken, destroyed or replaced",
    Reason.NOT_HANDED_OUT: "the key is delivered but not yet linked to a person (inactive)",
    Reason.RECEIPT_UNSIGNED: "the handout receipt has not been signed by the holder",
    Reason.HR_APPROVAL_MISSING: "an employee card needs HR approval before activation",
    Reason.NO_EMPLOYMENT: "the employment the credential is linked to is not registered",
    Reason.NO_AGREEMENT: "the organisation has no key grant agreement",
    Reason.AGREEMENT_NOT_STARTED: "the organisation's key grant agreement is not yet in force",
    Reason.AGREEMENT_ENDED: "the organisation's key grant agreement has ended or was terminated",
    Reason.ID06_BLOCKED: "the holder's ID06 card is blocked",
    Reason.ID06_TERMINATED: "the holder's ID06 card is terminated",
    Reason.ID06_EXPIRED: "the holder's ID06 card has expired",
    Reason.NO_APPROVED_APPLICATION: "no approved access application names this employment",
    Reason.APPLICATION_NOT_STARTED: "the approved access period has not started yet",
    Reason.APPLICATION_ENDED: "the approved access period has ended",
    Reason.ASSIGNMENT_ENDED: "the assignment's period does not cover the access period",
    Reason.SPACE_UNKNOWN: "the application names a space that is not registered",
    Reason.COMPETENCE_MISSING: "the holder lacks a competence the space requires",
    Reason.COMPETENCE_EXPIRED: "a competence the space requires has expired",
    Reason.VISITOR_NOT_STARTED: "the visitor card is not valid yet",
    Reason.VISITOR_EXPIRED: "the visitor card's validity has passed",
    Reason.SPONSOR_MISSING: "the visitor card's sponsor (contact person) is not registered",
    Reason.LOCK_UNKNOWN: "no space contains this lock",
    Reason.LOCK_NOT_GRANTED: "no granted space contains this lock",
    Reason.LOCK_KIND_MISMATCH: "keys open cylinders; tags and visitor cards open doors",
    Reason.OUTSIDE_WINDOW: "the time lies outside every granted window for this lock",
    Reason.OUTSIDE_SCHEDULE: "the time lies outside the weekly schedule of the grant",
    Reason.BLACKLISTED: "the key is on the cylinder's blacklist",
    Reason.ASSIGNMENT_UNKNOWN: "the application's assignment is not registered",
}

REVOCATION_REASONS = frozenset(
    {
        Reason.CREDENTIAL_REVOKED,
        Reason.ID06_BLOCKED,
        Reason.ID06_TERMINATED,
        Reason.AGREEMENT_ENDED,
        Reason.NO_EMPLOYMENT,
    }
)
"""Reasons that mean "this credential must be shut off", as opposed to "not yet active".
Credentials with one of these are revocations for the sync engine and go first."""

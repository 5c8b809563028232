"""Facts for multi-site tests and bench/sites.py: people with ID06 cards and tags, and one
space per controller, every person granted every space."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from gateway.domain import (
    AccessApplication,
    ApplicationEntry,
    ApplicationStatus,
    Assignment,
    Credential,
    CredentialKind,
    CredentialState,
    DoorRef,
    Employment,
    Id06Card,
    KeyGrantAgreement,
    Organisation,
    Person,
    Space,
)
from gateway.domain.identifiers import org_number_with_check_digit

TAG_BASE = 1_000_000


def card(i: int) -> str:
    """The ID06 card number of person ``i``."""
    return f"SITE{i:06d}"


def tag(i: int) -> str:
    """The tag number of person ``i``."""
    return str(TAG_BASE + i)


def site_facts(controllers: Iterable[str], people: int) -> list[object]:
    """``people`` employees, each with an ID06 card and an HR-approved tag, granted doors 1
    and 2 of every controller in ``controllers``."""
    now = datetime.now(UTC)
    today = now.date()
    org = org_number_with_check_digit("556677880")
    spaces = [
        Space(
            id=f"sp-{cid}",
            name=f"Space {cid}",
            doors=(DoorRef(controller_id=cid, door=1), DoorRef(controller_id=cid, door=2)),
        )
        for cid in controllers
    ]
    facts: list[object] = [
        Organisation(org_number=org, name="Sites AB"),
        KeyGrantAgreement(
            id="ag",
            org_number=org,
            signed_on=today - timedelta(days=10),
            valid_from=today - timedelta(days=10),
        ),
        *spaces,
        Assignment(
            id="a0",
            name="A",
            main_contractor=org,
            project_manager="PM",
            starts_on=today - timedelta(days=5),
            ends_on=today + timedelta(days=300),
        ),
    ]
    for i in range(people):
        facts.append(Person(id=f"p{i}", first_name="P", last_name=f"L{i}"))
        facts.append(
            Employment(
                id=f"e{i}",
                person_id=f"p{i}",
                org_number=org,
                id06=Id06Card(card_number=card(i), valid_until=today + timedelta(days=365)),
            )
        )
        facts.append(
            Credential(
                number=tag(i),
                kind=CredentialKind.TAG,
                state=CredentialState.IN_SERVICE,
                employment_id=f"e{i}",
                hr_approved_at=now,
            )
        )
    facts.append(
        AccessApplication(
            assignment_id="a0",
            revision=1,
            status=ApplicationStatus.APPROVED,
            submitted_at=now - timedelta(days=2),
            decided_at=now - timedelta(days=1),
            entries=tuple(
                ApplicationEntry(
                    employment_id=f"e{i}",
                    space_ids=tuple(s.id for s in spaces),
                    valid_from=today - timedelta(days=1),
                    valid_until=today + timedelta(days=200),
                )
                for i in range(people)
            ),
        )
    )
    return facts

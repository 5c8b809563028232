"""Who holds a credential, as people at a desk need to see it (never in MQTT topics or logs)."""

from __future__ import annotations

from gateway.domain.facts import CredentialKind
from gateway.rules.engine import RulesEngine


def holder_of(engine: RulesEngine, number: str) -> str:
    """The holder's name and organisation (never shown in MQTT topics or logs)."""
    facts = engine.facts
    cred = facts.credentials.get(number)
    if cred is None:
        return "-"
    if cred.kind is CredentialKind.VISITOR_CARD:
        card = facts.visitor_cards.get(number)
        return f"{card.holder_name} ({card.company})" if card else "-"
    if cred.employment_id is None:
        return "-"
    emp = facts.employments.get(cred.employment_id)
    if emp is None:
        return cred.employment_id
    person = facts.persons.get(emp.person_id)
    org = facts.organisations.get(emp.org_number)
    name = f"{person.first_name} {person.last_name}" if person else emp.person_id
    return f"{name}, {org.name if org else emp.org_number}"


__all__ = ["holder_of"]

"""Retention as a command: erase the personal data of persons and visitor cards past the
retention period, after checking each against the current facts.

:mod:`gateway.retention` plans a run (what the store says is old enough) and submits
:class:`ApplyRetention`; the handler here re-checks every item against the facts of the
transaction (they may have changed since the plan was made) and skips those no longer
eligible. The eligibility rules that only need facts live here too."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar
from zoneinfo import ZoneInfo

from pydantic import Field

from gateway.commands import model as m
from gateway.commands.context import CommandContext
from gateway.domain.facts import (
    ERASED,
    TERMINAL_STATES,
    Competence,
    Credential,
    Id06Status,
    Person,
    VisitorCard,
)
from gateway.domain.identifiers import Ident, RfidNumber
from gateway.domain.timeutil import UtcDateTime, end_of_day
from gateway.rules.factset import FactSet


class ApplyRetention(m.Command):
    """Erase the personal data of persons and visitor cards past the retention period."""

    name: ClassVar[str] = "retention"
    action: ClassVar[str] = "run_retention"
    summary: ClassVar[str] = "Erase personal data older than the retention period."

    cutoff: UtcDateTime
    persons: Annotated[tuple[Ident, ...], Field(max_length=100000)] = ()
    erase_cards: Annotated[tuple[RfidNumber, ...], Field(max_length=100000)] = ()
    delete_cards: Annotated[tuple[RfidNumber, ...], Field(max_length=100000)] = ()


def _erased_person(p: Person) -> Person:
    return p.model_copy(update={"first_name": ERASED, "last_name": ERASED, "mobile": None})


def _erased_card(card: VisitorCard) -> VisitorCard:
    return card.model_copy(
        update={"holder_name": ERASED, "company": ERASED, "mobile": ERASED, "erased": True}
    )


def apply_retention(ctx: CommandContext, cmd: ApplyRetention) -> None:
    """Re-checks every item against the current facts (they may have changed since the plan
    was made) and skips those no longer eligible."""
    facts = ctx.facts
    done: dict[str, list[str]] = {"persons": [], "erase_cards": [], "delete_cards": []}
    skipped: list[str] = []
    for pid in cmd.persons:
        person = facts.persons.get(pid)
        if (
            person is None
            or person.first_name == ERASED
            or not person_may_go(facts, pid, cmd.cutoff, ctx.cfg.timezone)
        ):
            skipped.append(f"person {pid}")
            continue
        ctx.put(_erased_person(person))
        for code in sorted(facts.competences.get(pid, {})):
            ctx.delete(Competence, (pid, code))
        ctx.subjects.append(f"person {pid}")
        done["persons"].append(pid)
    for number in cmd.erase_cards:
        card = facts.visitor_cards.get(number)
        if card is None or card.erased or not card_data_expired(card, cmd.cutoff):
            skipped.append(f"credential {number}")
            continue
        ctx.put(_erased_card(card))
        ctx.subjects.append(f"credential {number}")
        done["erase_cards"].append(number)
    for number in cmd.delete_cards:
        card = facts.visitor_cards.get(number)
        cred = facts.credentials.get(number)
        if card is None or cred is None or not card_closed_before(cred, card, cmd.cutoff):
            skipped.append(f"credential {number}")
            continue
        if not card.erased:
            ctx.put(_erased_card(card))
        ctx.delete(VisitorCard, (number,))
        ctx.delete(Credential, (number,))
        ctx.subjects.append(f"credential {number}")
        done["delete_cards"].append(number)
    ctx.result.update(done)
    ctx.result["skipped"] = skipped


def card_data_expired(card: VisitorCard, cutoff: datetime) -> bool:
    """The holder's data of a visitor card may go: its validity ended before ``cutoff`` (and
    it was not returned since)."""
    last = max(card.valid_until, card.returned_at or card.valid_until)
    return not card.erased and last < cutoff


def card_closed_before(cred: Credential, card: VisitorCard, cutoff: datetime) -> bool:
    """A returned or lost visitor card closed before ``cutoff``: what remains of it may go."""
    closed = card.returned_at or cred.state_changed_at
    return cred.state in TERMINAL_STATES and closed is not None and closed < cutoff


def _employment_ended(facts: FactSet, employment_id: str, cutoff: datetime, tz: ZoneInfo) -> bool:
    e = facts.employments[employment_id]
    if e.id06.status is Id06Status.TERMINATED:
        return True
    return end_of_day(e.id06.valid_until, tz) < cutoff


def person_may_go(facts: FactSet, person_id: str, cutoff: datetime, tz: ZoneInfo) -> bool:
    """What the facts say: no employment left, nothing live depends on the person, nothing
    of theirs changed since ``cutoff``. (Activity in the log, the journal and hardware events
    is checked by :func:`plan` on top.)"""
    for eid in facts.employments_by_person.get(person_id, ()):
        if eid not in facts.employments or not _employment_ended(facts, eid, cutoff, tz):
            return False
        for number in facts.credentials_by_employment.get(eid, ()):
            cred = facts.credentials[number]
            if cred.state not in TERMINAL_STATES:
                return False
            if cred.state_changed_at is None or cred.state_changed_at >= cutoff:
                return False
        for entry in facts.entries_by_employment.get(eid, {}).values():
            if end_of_day(entry.valid_until, tz) >= cutoff:
                return False
        for number in facts.visitors_by_sponsor.get(eid, ()):
            visitor = facts.credentials.get(number)
            card = facts.visitor_cards.get(number)
            if visitor is None or card is None:
                continue
            if not card_closed_before(visitor, card, cutoff):
                return False
    return True


__all__ = [
    "ApplyRetention",
    "apply_retention",
    "card_closed_before",
    "card_data_expired",
    "person_may_go",
]

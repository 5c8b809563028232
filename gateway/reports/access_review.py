"""The access review: every credential, its holder, sponsor and what it can open, grouped for
the operations manager's quarterly review (the seed: at least every quarter).

Pure: built from the rules engine's facts and derived states at one instant, and the last
recorded review (:mod:`gateway.audit.reviews`). Lists every credential that is not returned,
lost, broken, destroyed or replaced, in groups:

- one group per organisation for keys and employee cards handed out to its employees;
- one group for visitor and temporary cards;
- one group for keys and tags still in stock (not handed out).

The *sponsor* is who vouches for the access: a visitor card's contact person, and for keys and
tags the project managers of the assignments whose approved access applications grant it.
Each line carries flags a reviewer should act on (an expired visitor card not handed back, a
credential out with no access left). The report warns when no review was recorded, or the last
one is older than a quarter (three calendar months).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from gateway.domain.facts import (
    ERASED,
    TERMINAL_STATES,
    Credential,
    CredentialKind,
    CredentialState,
)
from gateway.reviews import ReviewRecord
from gateway.rules.engine import RulesEngine
from gateway.rules.factset import FactSet

VISITOR_GROUP: Final = "visitor and temporary cards"
STOCK_GROUP: Final = "in stock (not handed out)"

EXPIRED_NOT_RETURNED: Final = "expired, not handed back"
NO_ACCESS: Final = "out with no access left: collect or revoke it"


@dataclass(frozen=True, slots=True)
class Opening:
    """A space the credential can open, until when (``None``: no end), on a schedule or not."""

    space_id: str
    space_name: str
    until: datetime | None
    scheduled: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "space": self.space_id,
            "name": self.space_name,
            "until": self.until.isoformat() if self.until else None,
            "scheduled": self.scheduled,
        }


@dataclass(frozen=True, slots=True)
class ReviewLine:
    """One credential in the review."""

    number: str
    kind: str
    state: str
    holder: str
    organisation: str
    sponsor: str
    active: bool
    reasons: tuple[str, ...]
    opens: tuple[Opening, ...]
    valid_until: datetime | None
    flags: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "kind": self.kind,
            "state": self.state,
            "holder": self.holder,
            "organisation": self.organisation,
            "sponsor": self.sponsor,
            "active": self.active,
            "reasons": list(self.reasons),
            "opens": [o.as_json() for o in self.opens],
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "flags": list(self.flags),
        }


@dataclass(frozen=True, slots=True)
class ReviewGroup:
    name: str
    lines: tuple[ReviewLine, ...]


@dataclass(frozen=True)
class AccessReview:
    """The review at ``at``: the groups, the last recorded review, and warnings."""

    at: datetime
    groups: tuple[ReviewGroup, ...]
    last_review: ReviewRecord | None
    warnings: tuple[str, ...] = field(default=())

    @property
    def credentials(self) -> int:
        return sum(len(g.lines) for g in self.groups)

    @property
    def overdue(self) -> bool:
        return bool(self.warnings)

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "credentials": self.credentials,
            "last_review": self.last_review.as_json() if self.last_review else None,
            "warnings": list(self.warnings),
            "groups": [
                {"name": g.name, "credentials": [line.as_json() for line in g.lines]}
                for g in self.groups
            ],
        }


def months_before(at: datetime, months: int, tz: ZoneInfo) -> datetime:
    """The same wall-clock time ``months`` calendar months before ``at`` in ``tz`` (the day
    clamped to the month's length: three months before 31 May is 28 or 29 February)."""
    local = at.astimezone(tz)
    index = local.year * 12 + (local.month - 1) - months
    year, month = divmod(index, 12)
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    return local.replace(year=year, month=month + 1, day=day).astimezone(at.tzinfo)


def review_warnings(last: ReviewRecord | None, at: datetime, tz: ZoneInfo) -> tuple[str, ...]:
    """Warnings when no review was recorded, or the last is older than a quarter."""
    if last is None:
        return ("no access review has been recorded: review every card and its access",)
    if last.at < months_before(at, 3, tz):
        days = (at - last.at).days
        shown = last.at.astimezone(tz).strftime("%Y-%m-%d")
        return (
            f"the last access review was on {shown}, {days} days ago: more than a quarter; "
            "review every card and its access now",
        )
    return ()


def _person_name(facts: FactSet, employment_id: str | None) -> tuple[str, str]:
    """(the person's name, the organisation's name) of an employment."""
    if employment_id is None:
        return "-", "-"
    emp = facts.employments.get(employment_id)
    if emp is None:
        return employment_id, "-"
    person = facts.persons.get(emp.person_id)
    org = facts.organisations.get(emp.org_number)
    name = f"{person.first_name} {person.last_name}" if person else emp.person_id
    if person is not None and person.first_name == ERASED:
        name = ERASED
    return name, (f"{org.name} ({org.org_number})" if org else emp.org_number)


def _sponsors(facts: FactSet, cred: Credential) -> str:
    if cred.kind is CredentialKind.VISITOR_CARD:
        card = facts.visitor_cards.get(cred.number)
        if card is None:
            return "-"
        name, org = _person_name(facts, card.sponsor_employment_id)
        return f"{name}, {org}"
    if cred.employment_id is None:
        return "-"
    managers = {
        a.project_manager
        for aid in facts.entries_by_employment.get(cred.employment_id, {})
        if (a := facts.assignments.get(aid)) is not None
    }
    return ", ".join(sorted(managers)) or "-"


def _line(engine: RulesEngine, cred: Credential, at: datetime) -> tuple[str, ReviewLine]:
    facts = engine.facts
    state = engine.state(cred.number)
    flags: list[str] = []
    if cred.kind is CredentialKind.VISITOR_CARD:
        card = facts.visitor_cards.get(cred.number)
        holder = card.holder_name if card else "-"
        organisation = card.company if card else "-"
        group = VISITOR_GROUP
        if card is not None and card.valid_until <= at:
            flags.append(EXPIRED_NOT_RETURNED)
    elif cred.state is CredentialState.DELIVERED:
        holder, organisation, group = "-", "-", STOCK_GROUP
    else:
        holder, organisation = _person_name(facts, cred.employment_id)
        group = organisation
    opens = tuple(
        Opening(
            g.space_id,
            s.name if (s := facts.spaces.get(g.space_id)) else g.space_id,
            g.window.end,
            g.schedule is not None,
        )
        for g in (state.grants if state else ())
    )
    handed_out = cred.state in (CredentialState.HANDED_OUT, CredentialState.IN_SERVICE)
    if handed_out and cred.kind is not CredentialKind.VISITOR_CARD and not opens:
        flags.append(NO_ACCESS)
    line = ReviewLine(
        number=cred.number,
        kind=cred.kind.value,
        state=cred.state.value,
        holder=holder,
        organisation=organisation,
        sponsor=_sponsors(facts, cred),
        active=bool(state and state.active),
        reasons=tuple(r.value for r in state.reasons) if state else (),
        opens=opens,
        valid_until=state.window.end if state and state.window else None,
        flags=tuple(flags),
    )
    return group, line


def access_review(
    engine: RulesEngine, at: datetime, last: ReviewRecord | None, tz: ZoneInfo
) -> AccessReview:
    """The review of every live credential at ``at`` (the engine must be current at ``at``)."""
    groups: dict[str, list[ReviewLine]] = {}
    for cred in engine.facts.credentials.values():
        if cred.state in TERMINAL_STATES:
            continue
        group, line = _line(engine, cred, at)
        groups.setdefault(group, []).append(line)

    def order(name: str) -> tuple[int, str]:
        return (2 if name == STOCK_GROUP else 1 if name == VISITOR_GROUP else 0, name)

    return AccessReview(
        at=at,
        groups=tuple(
            ReviewGroup(name, tuple(sorted(groups[name], key=lambda x: (len(x.number), x.number))))
            for name in sorted(groups, key=order)
        ),
        last_review=last,
        warnings=review_warnings(last, at, tz),
    )


__all__ = [
    "EXPIRED_NOT_RETURNED",
    "NO_ACCESS",
    "STOCK_GROUP",
    "VISITOR_GROUP",
    "AccessReview",
    "Opening",
    "ReviewGroup",
    "ReviewLine",
    "access_review",
    "months_before",
    "review_warnings",
]

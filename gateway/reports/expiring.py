"""What lapses soon: agreements, ID06 cards, competences, credentials and visitor cards.

Operators renew a key grant agreement, order a new ID06 card (1-2 weeks) or book a course
before the old one lapses; this report lists what is about to. A calendar date (an ID06 card
valid until 31 March) lapses at the end of that local day in the site time zone; instants
(a visitor card's ``valid_until``, an agreement's ``terminated_at``) lapse when they say.

The window of ``days`` whole local days runs from ``now`` to the end of the local day ``days``
days after today: ``days=0`` lists what lapses by the end of today. ``days_left`` of an item
counts the local midnights between ``now`` and the moment it lapses: 0 when it lapses before
the end of today, 1 when it lapses tomorrow (a card valid through tomorrow), and so on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from gateway.domain import (
    Competence,
    DomainError,
    Employment,
    Id06Status,
    KeyGrantAgreement,
    VisitorCard,
)
from gateway.domain.timeutil import end_of_day

ExpiringKind = Literal["agreement", "id06", "competence", "credential", "visitor_card"]


@dataclass(frozen=True)
class ExpiringItem:
    """One thing that lapses in the window.

    ``subject`` holds identifiers only, never names: the agreement id, the employment id (for
    its ID06 card), ``person_id/CODE`` (competence), the credential or visitor card number.
    ``organisation`` is the organisation number concerned when there is one (a visitor card's
    is its sponsor's). ``lapses_at`` is in UTC; ``days_left`` is explained in the module
    docstring; ``detail`` is a short sentence for the operator.
    """

    kind: ExpiringKind
    subject: str
    organisation: str | None
    lapses_at: datetime
    days_left: int
    detail: str


def _require_aware(value: datetime, field: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise DomainError("must carry a time zone", field=field)


def expiring(
    *,
    now: datetime,
    days: int,
    tz: ZoneInfo,
    agreements: Iterable[KeyGrantAgreement],
    employments: Iterable[Employment],
    competences: Iterable[Competence],
    visitor_cards: Iterable[VisitorCard],
    credential_lapses: Mapping[str, datetime],
) -> list[ExpiringItem]:
    """Everything that lapses from ``now`` to the end of the local day ``days`` days ahead.

    Lists key grant agreements (end of ``valid_until``, or ``terminated_at`` if earlier),
    active ID06 cards (end of ``valid_until``), competences (end of ``valid_until``), visitor
    cards not returned (``valid_until``) and credentials whose derived validity ends
    (``credential_lapses``: credential number -> instant, from the rules engine). Things that
    lapsed before ``now`` are not listed. Sorted by ``lapses_at``, then kind and subject.
    """
    _require_aware(now, "now")
    if days < 0:
        raise DomainError("must not be negative", field="days")
    for number, at in credential_lapses.items():
        _require_aware(at, f"credential_lapses[{number}]")
    today = now.astimezone(tz).date()
    window_end = end_of_day(today + timedelta(days=days), tz)
    employments = list(employments)
    sponsor_org = {e.id: e.org_number for e in employments}

    def item(
        kind: ExpiringKind, subject: str, organisation: str | None, lapses_at: datetime, detail: str
    ) -> ExpiringItem:
        last_day = (lapses_at - timedelta(microseconds=1)).astimezone(tz).date()
        days_left = max(0, (last_day - today).days)
        return ExpiringItem(
            kind, subject, organisation, lapses_at.astimezone(UTC), days_left, detail
        )

    def candidates() -> Iterator[ExpiringItem]:
        for a in agreements:
            lapses = _agreement_lapse(a, tz)
            if lapses is not None:
                at, detail = lapses
                yield item("agreement", a.id, a.org_number, at, detail)
        for e in employments:
            if e.id06.status is Id06Status.ACTIVE:
                at = end_of_day(e.id06.valid_until, tz)
                detail = (
                    f"ID06 card {e.id06.card_number} valid until {e.id06.valid_until.isoformat()}"
                )
                yield item("id06", e.id, e.org_number, at, detail)
        for c in competences:
            at = end_of_day(c.valid_until, tz)
            detail = f"competence {c.code} valid until {c.valid_until.isoformat()}"
            yield item("competence", f"{c.person_id}/{c.code}", None, at, detail)
        for v in visitor_cards:
            if v.returned_at is None:
                detail = (
                    f"visitor card valid until {_local(v.valid_until, tz)}, not returned; "
                    f"sponsor employment {v.sponsor_employment_id}"
                )
                org = sponsor_org.get(v.sponsor_employment_id)
                yield item("visitor_card", v.number, org, v.valid_until, detail)
        for number, at in credential_lapses.items():
            detail = f"derived validity ends {_local(at, tz)}"
            yield item("credential", number, None, at, detail)

    found = [i for i in candidates() if now <= i.lapses_at <= window_end]
    found.sort(key=lambda i: (i.lapses_at, i.kind, i.subject))
    return found


def _agreement_lapse(a: KeyGrantAgreement, tz: ZoneInfo) -> tuple[datetime, str] | None:
    ends = end_of_day(a.valid_until, tz) if a.valid_until is not None else None
    if a.terminated_at is not None and (ends is None or a.terminated_at < ends):
        return a.terminated_at, f"key grant agreement terminated at {_local(a.terminated_at, tz)}"
    if ends is None:
        return None
    return ends, f"key grant agreement valid until {a.valid_until}"


def _local(at: datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"

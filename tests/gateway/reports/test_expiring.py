from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain import (
    Competence,
    DomainError,
    Employment,
    Id06Card,
    Id06Status,
    KeyGrantAgreement,
    VisitorCard,
    VisitorReason,
)
from gateway.reports import ExpiringItem, expiring

TZ = ZoneInfo("Europe/Stockholm")
ORG = "556036-0793"
OTHER_ORG = "556677-8899"
NOW = datetime(2026, 3, 20, 10, 0, tzinfo=TZ)  # Friday


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


def agreement(
    aid: str,
    valid_until: date | None,
    terminated_at: datetime | None = None,
    valid_from: date = date(2025, 1, 1),
) -> KeyGrantAgreement:
    return KeyGrantAgreement(
        id=aid,
        org_number=ORG,
        signed_on=valid_from,
        valid_from=valid_from,
        valid_until=valid_until,
        terminated_at=terminated_at,
    )


def employment(
    eid: str, valid_until: date, status: Id06Status = Id06Status.ACTIVE, org: str = ORG
) -> Employment:
    card = Id06Card(
        card_number=f"C{eid.upper().replace('-', '')}0000", valid_until=valid_until, status=status
    )
    return Employment(id=eid, person_id=f"p{eid}", org_number=org, id06=card)


def competence(person: str, code: str, valid_until: date) -> Competence:
    return Competence(person_id=person, code=code, valid_until=valid_until)


def visitor(
    number: str, valid_until: datetime, sponsor: str = "e1", returned: bool = False
) -> VisitorCard:
    issued = valid_until - timedelta(days=2)
    return VisitorCard(
        number=number,
        holder_name="Vera Visitor",
        company="Supplier AB",
        mobile="+46701234567",
        sponsor_employment_id=sponsor,
        reason=VisitorReason.SUPPLIER,
        space_ids=("office",),
        valid_from=issued,
        valid_until=valid_until,
        issued_at=issued,
        returned_at=issued + timedelta(hours=1) if returned else None,
    )


def report(
    *,
    now: datetime = NOW,
    days: int = 30,
    agreements: Iterable[KeyGrantAgreement] = (),
    employments: Iterable[Employment] = (),
    competences: Iterable[Competence] = (),
    visitor_cards: Iterable[VisitorCard] = (),
    credential_lapses: Mapping[str, datetime] | None = None,
) -> list[ExpiringItem]:
    return expiring(
        now=now,
        days=days,
        tz=TZ,
        agreements=agreements,
        employments=employments,
        competences=competences,
        visitor_cards=visitor_cards,
        credential_lapses=credential_lapses or {},
    )


def test_every_kind_sorted_by_when_it_lapses() -> None:
    items = report(
        agreements=[
            agreement("ag-ends", date(2026, 4, 10)),
            agreement("ag-terminated", date(2030, 1, 1), local(2026, 3, 25, 12)),
            agreement("ag-open", None),
            agreement("ag-far", date(2026, 6, 1)),
        ],
        employments=[
            employment("e1", date(2026, 3, 31)),
            employment("e2", date(2026, 3, 22), status=Id06Status.BLOCKED),
            employment("e3", date(2026, 3, 22), org=OTHER_ORG),
        ],
        competences=[competence("p9", "elsak", date(2026, 4, 1))],
        visitor_cards=[
            visitor("4001", local(2026, 3, 20, 17)),
            visitor("4002", local(2026, 3, 20, 17), returned=True),
            visitor("4003", local(2026, 3, 21, 9), sponsor="e-unknown"),
        ],
        credential_lapses={"123456789": local(2026, 4, 3, 6)},
    )
    assert [(i.kind, i.subject, i.organisation, i.days_left) for i in items] == [
        ("visitor_card", "4001", ORG, 0),
        ("visitor_card", "4003", None, 1),
        ("id06", "e3", OTHER_ORG, 2),
        ("agreement", "ag-terminated", ORG, 5),
        ("id06", "e1", ORG, 11),
        ("competence", "p9/ELSAK", None, 12),
        ("credential", "123456789", None, 14),
        ("agreement", "ag-ends", ORG, 21),
    ]
    by_subject = {i.subject: i for i in items}
    assert by_subject["e1"].lapses_at == local(2026, 4, 1)
    assert by_subject["e1"].detail == "ID06 card CE10000 valid until 2026-03-31"
    assert by_subject["ag-terminated"].lapses_at == local(2026, 3, 25, 12)
    assert by_subject["ag-terminated"].detail == (
        "key grant agreement terminated at 2026-03-25 12:00 CET"
    )
    assert by_subject["ag-ends"].detail == "key grant agreement valid until 2026-04-10"
    assert by_subject["p9/ELSAK"].detail == "competence ELSAK valid until 2026-04-01"
    assert "2026-03-20 17:00 CET, not returned" in by_subject["4001"].detail
    assert by_subject["123456789"].detail == "derived validity ends 2026-04-03 06:00 CEST"
    assert all(i.lapses_at.utcoffset() == timedelta(0) for i in items)
    for item in items:
        assert "Vera" not in item.detail
        assert "Supplier" not in item.detail


def test_window_edges_in_whole_local_days() -> None:
    today = NOW.date()
    offsets = {"e-past": -1, "e-today": 0, "e-last": 3, "e-after": 4}
    cards = [employment(eid, today + timedelta(days=n)) for eid, n in offsets.items()]
    items = report(days=3, employments=cards)
    assert [(i.subject, i.days_left) for i in items] == [("e-today", 0), ("e-last", 3)]
    items = report(days=0, employments=cards)
    assert [i.subject for i in items] == ["e-today"]


def test_instant_lapses_at_the_window_edges() -> None:
    lapses = {
        "1": NOW - timedelta(microseconds=1),  # already lapsed
        "2": NOW,  # lapses right now
        "3": local(2026, 3, 23),  # midnight ending the last day of a 2-day window
        "4": local(2026, 3, 23) + timedelta(microseconds=1),
    }
    items = report(days=2, credential_lapses=lapses)
    assert [(i.subject, i.days_left) for i in items] == [("2", 0), ("3", 2)]


def test_agreement_already_terminated_is_not_listed() -> None:
    items = report(agreements=[agreement("ag", date(2026, 3, 25), local(2026, 3, 19))])
    assert items == []


def test_window_across_the_change_to_summer_time() -> None:
    # 29 March 2026 has 23 hours in Stockholm.
    items = report(
        now=local(2026, 3, 28, 12),
        days=1,
        employments=[employment("e1", date(2026, 3, 29)), employment("e2", date(2026, 3, 30))],
    )
    assert [(i.subject, i.lapses_at, i.days_left) for i in items] == [
        ("e1", datetime(2026, 3, 29, 22, 0, tzinfo=UTC), 1)
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"now": datetime(2026, 3, 20, 10)}, "now"),
        ({"days": -1}, "days"),
        ({"credential_lapses": {"42": datetime(2026, 3, 21)}}, "credential_lapses[42]"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(DomainError) as info:
        report(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


# --------------------------------------------------------------------------------- properties

EARLIEST_OFFSET = -20
day_offsets = st.integers(min_value=EARLIEST_OFFSET, max_value=60)
EARLIEST_NOW = datetime(2025, 1, 1, tzinfo=UTC)
now_strategy = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@dataclass(frozen=True)
class Drawn:
    now: datetime
    days: int
    agreements: list[KeyGrantAgreement]
    employments: list[Employment]
    competences: list[Competence]
    visitor_cards: list[VisitorCard]
    credential_lapses: dict[str, datetime]


@st.composite
def drawn_facts(draw: st.DrawFn, nows: st.SearchStrategy[datetime] = now_strategy) -> Drawn:
    now = draw(nows)
    today = now.astimezone(TZ).date()
    some_day = day_offsets.map(lambda d: today + timedelta(days=d))
    some_instant = st.integers(-20 * 1440, 60 * 1440).map(lambda m: now + timedelta(minutes=m))
    # Every agreement is in force from the earliest day drawn on: its end may be any day drawn.
    in_force_from = today + timedelta(days=EARLIEST_OFFSET)
    agreements = [
        agreement(
            f"ag{n}", draw(st.none() | some_day), draw(st.none() | some_instant), in_force_from
        )
        for n in range(draw(st.integers(0, 4)))
    ]
    statuses = st.sampled_from(list(Id06Status))
    employments = [
        employment(f"e{n}", draw(some_day), draw(statuses)) for n in range(draw(st.integers(0, 5)))
    ]
    competences = [
        competence(f"p{n}", "ELSAK", draw(some_day)) for n in range(draw(st.integers(0, 4)))
    ]
    visitor_cards = [
        visitor(str(4000 + n), draw(some_instant), returned=draw(st.booleans()))
        for n in range(draw(st.integers(0, 4)))
    ]
    lapses = {str(100000000 + n): draw(some_instant) for n in range(draw(st.integers(0, 4)))}
    return Drawn(
        now,
        draw(st.integers(min_value=0, max_value=40)),
        agreements,
        employments,
        competences,
        visitor_cards,
        lapses,
    )


@given(drawn_facts())
def test_items_lie_in_the_window_and_nothing_is_missing(f: Drawn) -> None:
    check_items_lie_in_the_window_and_nothing_is_missing(f)


@given(drawn_facts(st.just(EARLIEST_NOW)))
def test_the_property_holds_at_the_earliest_instant_drawn(f: Drawn) -> None:
    """Agreements ending before the earliest ``now`` drawn (the edge where the strategy once
    built agreements ending before they began) are drawn and reported correctly."""
    check_items_lie_in_the_window_and_nothing_is_missing(f)


def check_items_lie_in_the_window_and_nothing_is_missing(f: Drawn) -> None:
    now, days = f.now, f.days
    items = expiring(
        now=now,
        days=days,
        tz=TZ,
        agreements=f.agreements,
        employments=f.employments,
        competences=f.competences,
        visitor_cards=f.visitor_cards,
        credential_lapses=f.credential_lapses,
    )
    today = now.astimezone(TZ).date()
    last = today + timedelta(days=days)

    def date_in_window(d: date) -> bool:
        # A whole local day lapses at its end; that end may equal `now` only at midnight.
        ends = datetime.combine(d + timedelta(days=1), datetime.min.time(), TZ)
        return today <= d <= last or ends == now

    def instant_in_window(at: datetime) -> bool:
        last_day = (at - timedelta(microseconds=1)).astimezone(TZ).date()
        return now <= at and last_day <= last

    expected: set[tuple[str, str]] = set()
    for a in f.agreements:
        if a.terminated_at is not None and (
            a.valid_until is None or a.terminated_at.astimezone(TZ).date() <= a.valid_until
        ):
            if instant_in_window(a.terminated_at):
                expected.add(("agreement", a.id))
        elif a.valid_until is not None and date_in_window(a.valid_until):
            expected.add(("agreement", a.id))
    expected |= {
        ("id06", e.id)
        for e in f.employments
        if e.id06.status is Id06Status.ACTIVE and date_in_window(e.id06.valid_until)
    }
    expected |= {
        ("competence", f"{c.person_id}/ELSAK")
        for c in f.competences
        if date_in_window(c.valid_until)
    }
    expected |= {
        ("visitor_card", v.number)
        for v in f.visitor_cards
        if v.returned_at is None and instant_in_window(v.valid_until)
    }
    expected |= {
        ("credential", n) for n, at in f.credential_lapses.items() if instant_in_window(at)
    }

    assert {(i.kind, i.subject) for i in items} == expected
    assert len(items) == len(expected)
    window_end = datetime.combine(last + timedelta(days=1), datetime.min.time(), TZ)
    for item in items:
        assert now <= item.lapses_at <= window_end
        assert 0 <= item.days_left <= days
    assert [i.lapses_at for i in items] == sorted(i.lapses_at for i in items)

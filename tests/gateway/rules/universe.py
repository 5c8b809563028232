"""Hypothesis strategies for a small universe of related facts.

Ids come from small pools so that generated facts refer to each other (an employment's person
exists, an application names registered spaces ...) often enough to exercise every rule.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import strategies as st

from gateway.domain import (
    AccessApplication,
    ApplicationEntry,
    ApplicationStatus,
    Assignment,
    Competence,
    Credential,
    CredentialKind,
    CredentialState,
    DoorRef,
    Employment,
    Fact,
    Id06Card,
    Id06Status,
    KeyGrantAgreement,
    Organisation,
    Person,
    ScheduleInterval,
    Space,
    VisitorCard,
    VisitorReason,
    WeeklySchedule,
)
from gateway.domain.identifiers import org_number_with_check_digit

BASE_DAY = date(2026, 3, 20)  # a week before the spring DST change in Europe
BASE = datetime.combine(BASE_DAY, time(12), UTC)

ORGS = [org_number_with_check_digit(n) for n in ("556677880", "559012345")]
PERSONS = ["p1", "p2", "p3"]
EMPLOYMENTS = {
    "e1": ("p1", ORGS[0]),
    "e2": ("p1", ORGS[1]),
    "e3": ("p2", ORGS[0]),
    "e4": ("p3", ORGS[1]),
}
CARDS = {"e1": "CARD0001", "e2": "CARD0002", "e3": "CARD0003", "e4": "CARD0004"}
SPACES = ["s1", "s2", "s3"]
CYLINDERS = ["1", "2", "3", "4", "5"]
ASSIGNMENTS = ["a1", "a2"]
KEYS = ["100000001", "100000002", "100000003", "100000004"]
TAGS = ["11", "12"]
VISITORS = ["21", "22"]
CODES = ["ELSAK", "HETA"]

days = st.integers(min_value=-40, max_value=40)


def day(offset: int) -> date:
    return BASE_DAY + timedelta(days=offset)


def instant(offset_hours: int) -> datetime:
    return BASE + timedelta(hours=offset_hours)


@st.composite
def date_range(draw: st.DrawFn) -> tuple[date, date]:
    a = draw(days)
    b = draw(st.integers(min_value=a, max_value=60))
    return day(a), day(b)


organisations = st.builds(lambda o: Organisation(org_number=o, name="Org"), st.sampled_from(ORGS))


@st.composite
def agreements(draw: st.DrawFn) -> KeyGrantAgreement:
    start, end = draw(date_range())
    terminated = draw(st.none() | st.integers(-900, 900).map(instant))
    return KeyGrantAgreement(
        id=draw(st.sampled_from(["ag1", "ag2", "ag3"])),
        org_number=draw(st.sampled_from(ORGS)),
        signed_on=start,
        valid_from=start,
        valid_until=draw(st.sampled_from([None, end])),
        terminated_at=terminated,
    )


persons = st.builds(lambda p: Person(id=p, first_name="A", last_name="B"), st.sampled_from(PERSONS))


@st.composite
def employments(draw: st.DrawFn) -> Employment:
    eid = draw(st.sampled_from(sorted(EMPLOYMENTS)))
    pid, org = EMPLOYMENTS[eid]
    return Employment(
        id=eid,
        person_id=pid,
        org_number=org,
        id06=Id06Card(
            card_number=CARDS[eid],
            valid_until=day(draw(days)),
            status=draw(st.sampled_from(list(Id06Status))),
        ),
    )


competences = st.builds(
    lambda p, c, d: Competence(person_id=p, code=c, valid_until=day(d)),
    st.sampled_from(PERSONS),
    st.sampled_from(CODES),
    days,
)


@st.composite
def spaces(draw: st.DrawFn) -> Space:
    return Space(
        id=draw(st.sampled_from(SPACES)),
        name="Space",
        cylinders=tuple(draw(st.lists(st.sampled_from(CYLINDERS), unique=True, max_size=3))),
        doors=tuple(
            DoorRef(controller_id=c, door=d)
            for c, d in draw(
                st.lists(
                    st.tuples(st.sampled_from(["c1", "c2"]), st.integers(1, 3)),
                    unique=True,
                    max_size=3,
                )
            )
        ),
        required_competences=tuple(draw(st.lists(st.sampled_from(CODES), unique=True, max_size=1))),
        revalidation_days=draw(st.none() | st.integers(1, 30)),
    )


@st.composite
def assignments(draw: st.DrawFn) -> Assignment:
    start, end = draw(date_range())
    return Assignment(
        id=draw(st.sampled_from(ASSIGNMENTS)),
        name="A",
        main_contractor=ORGS[0],
        project_manager="PM",
        starts_on=start,
        ends_on=end,
    )


schedules = st.none() | st.just(
    WeeklySchedule(intervals=(ScheduleInterval(days=(0, 1, 2, 3, 4), start=time(6), end=time(18)),))
)


@st.composite
def entries(draw: st.DrawFn, employment_id: str) -> ApplicationEntry:
    start, end = draw(date_range())
    return ApplicationEntry(
        employment_id=employment_id,
        space_ids=tuple(
            draw(st.lists(st.sampled_from(SPACES), unique=True, min_size=1, max_size=2))
        ),
        valid_from=start,
        valid_until=end,
        schedule=draw(schedules),
    )


@st.composite
def applications(draw: st.DrawFn) -> AccessApplication:
    emps = draw(st.lists(st.sampled_from(sorted(EMPLOYMENTS)), unique=True, max_size=3))
    status = draw(st.sampled_from(list(ApplicationStatus)))
    submitted = instant(draw(st.integers(-900, 0)))
    decided = (
        submitted + timedelta(hours=1)
        if status in (ApplicationStatus.APPROVED, ApplicationStatus.REJECTED)
        else None
    )
    return AccessApplication(
        assignment_id=draw(st.sampled_from(ASSIGNMENTS)),
        revision=draw(st.integers(1, 3)),
        status=status,
        submitted_at=submitted,
        decided_at=decided,
        entries=tuple(draw(entries(e)) for e in emps),
    )


@st.composite
def credentials(draw: st.DrawFn) -> Credential:
    kind = draw(st.sampled_from(list(CredentialKind)))
    number = draw(
        st.sampled_from(
            {
                CredentialKind.KEY: KEYS,
                CredentialKind.TAG: TAGS,
                CredentialKind.VISITOR_CARD: VISITORS,
            }[kind]
        )
    )
    state = draw(st.sampled_from(list(CredentialState)))
    if kind is CredentialKind.VISITOR_CARD:
        if state in (CredentialState.DELIVERED, CredentialState.HANDED_OUT):
            state = CredentialState.IN_SERVICE
        emp = None
    elif state is CredentialState.DELIVERED:
        emp = None
    else:
        emp = draw(st.sampled_from(sorted(EMPLOYMENTS)))
    approved = instant(-1000) if kind is CredentialKind.TAG and draw(st.booleans()) else None
    return Credential(
        number=number, kind=kind, state=state, employment_id=emp, hr_approved_at=approved
    )


@st.composite
def visitor_cards(draw: st.DrawFn) -> VisitorCard:
    start = instant(draw(st.integers(-500, 500)))
    end = start + timedelta(hours=draw(st.integers(1, 400)))
    return VisitorCard(
        number=draw(st.sampled_from(VISITORS)),
        holder_name="V",
        company="C",
        mobile="+4670000",
        sponsor_employment_id=draw(st.sampled_from(sorted(EMPLOYMENTS))),
        reason=VisitorReason.SUPPLIER,
        space_ids=tuple(
            draw(st.lists(st.sampled_from(SPACES), unique=True, min_size=1, max_size=2))
        ),
        valid_from=start,
        valid_until=end,
        issued_at=start,
    )


facts: st.SearchStrategy[Fact] = st.one_of(
    organisations,
    agreements(),
    persons,
    employments(),
    competences,
    spaces(),
    assignments(),
    applications(),
    credentials(),
    visitor_cards(),
)


@st.composite
def fact_sets(draw: st.DrawFn, min_size: int = 0, max_size: int = 40) -> list[Fact]:
    """A list of facts with distinct identities (as a store would hold them)."""
    from gateway.domain import fact_key

    out: dict[tuple[str, tuple[str, ...]], Fact] = {}
    for f in draw(st.lists(facts, min_size=min_size, max_size=max_size)):
        out[(type(f).__name__, fact_key(f))] = f
    return list(out.values())


@st.composite
def rich_fact_sets(draw: st.DrawFn) -> list[Fact]:
    """Fact sets that always hold the master data, so that most credentials can be active."""
    base: list[Fact] = [Organisation(org_number=o, name="Org") for o in ORGS]
    base += [Person(id=p, first_name="A", last_name="B") for p in PERSONS]
    base += [
        KeyGrantAgreement(id=f"ag-{i}", org_number=o, signed_on=day(-60), valid_from=day(-60))
        for i, o in enumerate(ORGS)
    ]
    base += [
        Employment(
            id=e,
            person_id=p,
            org_number=o,
            id06=Id06Card(card_number=CARDS[e], valid_until=day(60)),
        )
        for e, (p, o) in EMPLOYMENTS.items()
    ]
    base += [
        Assignment(
            id=a,
            name="A",
            main_contractor=ORGS[0],
            project_manager="PM",
            starts_on=day(-60),
            ends_on=day(60),
        )
        for a in ASSIGNMENTS
    ]
    base += [
        Space(
            id="s1", name="S1", cylinders=("1", "2"), doors=(DoorRef(controller_id="c1", door=1),)
        ),
        Space(
            id="s2",
            name="S2",
            cylinders=("3",),
            doors=(DoorRef(controller_id="c1", door=2),),
            required_competences=("ELSAK",),
            revalidation_days=7,
        ),
        Space(id="s3", name="S3", cylinders=("4", "5")),
        Competence(person_id="p1", code="ELSAK", valid_until=day(draw(st.integers(-5, 40)))),
        AccessApplication(
            assignment_id="a1",
            revision=1,
            status=ApplicationStatus.APPROVED,
            submitted_at=instant(-500),
            decided_at=instant(-400),
            entries=tuple(
                ApplicationEntry(
                    employment_id=e,
                    space_ids=sp,
                    valid_from=day(-10),
                    valid_until=day(draw(st.integers(-3, 30))),
                    schedule=draw(schedules),
                )
                for e, sp in (
                    ("e1", ("s1", "s2")),
                    ("e2", ("s3",)),
                    ("e3", ("s1", "s3")),
                    ("e4", ("s2",)),
                )
            ),
        ),
        Credential(
            number=KEYS[0],
            kind=CredentialKind.KEY,
            state=CredentialState.IN_SERVICE,
            employment_id="e1",
        ),
        Credential(
            number=KEYS[1],
            kind=CredentialKind.KEY,
            state=CredentialState.IN_SERVICE,
            employment_id="e2",
        ),
        Credential(
            number=KEYS[2],
            kind=CredentialKind.KEY,
            state=CredentialState.IN_SERVICE,
            employment_id="e3",
        ),
        Credential(
            number=TAGS[0],
            kind=CredentialKind.TAG,
            state=CredentialState.IN_SERVICE,
            employment_id="e1",
            hr_approved_at=instant(-600),
        ),
        Credential(
            number=VISITORS[0], kind=CredentialKind.VISITOR_CARD, state=CredentialState.IN_SERVICE
        ),
        VisitorCard(
            number=VISITORS[0],
            holder_name="V",
            company="C",
            mobile="+4670000",
            sponsor_employment_id="e3",
            reason=VisitorReason.SUPPLIER,
            space_ids=("s1",),
            valid_from=instant(-5),
            valid_until=instant(draw(st.integers(1, 300))),
            issued_at=instant(-5),
        ),
    ]
    extra = draw(fact_sets(min_size=0, max_size=10))
    from gateway.domain import fact_key

    merged = {(type(f).__name__, fact_key(f)): f for f in base}
    for f in extra:
        merged[(type(f).__name__, fact_key(f))] = f
    return list(merged.values())

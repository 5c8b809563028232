"""Revisions are digests published to central systems: their values never change, whatever
shortcuts the derivation takes. And what the engine keeps for a site stays small."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given
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
    KeyGrantAgreement,
    Organisation,
    Person,
    ScheduleInterval,
    Space,
    VisitorCard,
    VisitorReason,
    WeeklySchedule,
    Window,
)
from gateway.domain.identifiers import org_number_with_check_digit
from gateway.rules import Grant, RulesConfig, RulesEngine
from gateway.rules.evaluate import _meet, _merge

ORG = org_number_with_check_digit("556600002")
TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
WEEKDAYS = WeeklySchedule(
    intervals=(ScheduleInterval(days=(0, 1, 2, 3, 4), start=time(6), end=time(18)),)
)


def site() -> list[Fact]:
    """Keys and tags with several spaces, a schedule, a competence, revalidation, grants of
    two applications that merge, a grant clipped by an ID06 card, and a visitor card."""
    out: list[Fact] = [
        Organisation(org_number=ORG, name="Org"),
        KeyGrantAgreement(
            id="ag",
            org_number=ORG,
            signed_on=TODAY - timedelta(days=90),
            valid_from=TODAY - timedelta(days=90),
        ),
        Space(
            id="s1", name="S1", cylinders=("1", "2"), doors=(DoorRef(controller_id="c1", door=1),)
        ),
        Space(
            id="s2",
            name="S2",
            cylinders=("3",),
            required_competences=("ELSAK",),
            revalidation_days=7,
            doors=(DoorRef(controller_id="c1", door=2),),
        ),
        Space(id="s3", name="S3", cylinders=("4",)),
        Competence(person_id="p1", code="ELSAK", valid_until=TODAY + timedelta(days=20)),
    ]
    for i, card_days in ((1, 300), (2, 40), (3, 300)):
        out += [
            Person(id=f"p{i}", first_name="A", last_name=f"B{i}"),
            Employment(
                id=f"e{i}",
                person_id=f"p{i}",
                org_number=ORG,
                id06=Id06Card(
                    card_number=f"ID06000{i}", valid_until=TODAY + timedelta(days=card_days)
                ),
            ),
        ]
    out += [
        Credential(
            number="100000001",
            kind=CredentialKind.KEY,
            state=CredentialState.IN_SERVICE,
            employment_id="e1",
        ),
        Credential(
            number="100000002",
            kind=CredentialKind.KEY,
            state=CredentialState.IN_SERVICE,
            employment_id="e2",
        ),
        Credential(
            number="11",
            kind=CredentialKind.TAG,
            state=CredentialState.IN_SERVICE,
            employment_id="e3",
            hr_approved_at=NOW - timedelta(days=1),
        ),
        Credential(number="21", kind=CredentialKind.VISITOR_CARD, state=CredentialState.IN_SERVICE),
        VisitorCard(
            number="21",
            holder_name="V",
            company="C",
            mobile="+4670000",
            sponsor_employment_id="e1",
            reason=VisitorReason.SUPPLIER,
            space_ids=("s1",),
            valid_from=NOW - timedelta(hours=2),
            valid_until=NOW + timedelta(hours=30),
            issued_at=NOW - timedelta(hours=2),
        ),
    ]
    for a, (start, end) in (("a1", (-10, 30)), ("a2", (30, 90))):
        out += [
            Assignment(
                id=a,
                name=a,
                main_contractor=ORG,
                project_manager="PM",
                starts_on=TODAY - timedelta(days=60),
                ends_on=TODAY + timedelta(days=200),
            ),
            AccessApplication(
                assignment_id=a,
                revision=1,
                status=ApplicationStatus.APPROVED,
                submitted_at=NOW - timedelta(days=3),
                decided_at=NOW - timedelta(days=2),
                entries=tuple(
                    ApplicationEntry(
                        employment_id=e,
                        space_ids=spaces,
                        valid_from=TODAY + timedelta(days=start),
                        valid_until=TODAY + timedelta(days=end),
                        schedule=WEEKDAYS if e == "e3" else None,
                    )
                    for e, spaces in (
                        ("e1", ("s3", "s1", "s2")),
                        ("e2", ("s1", "s3")),
                        ("e3", ("s1", "s2")),
                    )
                ),
            ),
        ]
    return out


# Computed by the derivation before it took any shortcut (and published as such).
REVISIONS = {
    "100000001": "b5bafba5cdcd5533",
    "100000002": "5bdbbe8a97f2ebfa",
    "11": "ee6cfacbbbcb91fe",
    "21": "4d9d8ca644c43315",
}


def test_revisions_keep_their_published_values() -> None:
    engine = RulesEngine.build(site(), NOW, RulesConfig())
    assert {n: s.revision for n, s in engine.states.items()} == REVISIONS
    # The same after being derived again incrementally.
    engine.apply(site()[-1], NOW)
    assert {n: s.revision for n, s in engine.states.items()} == REVISIONS


windows = st.builds(
    Window,
    st.none() | st.integers(-5, 5).map(lambda d: NOW + timedelta(days=d)),
    st.none() | st.integers(-5, 5).map(lambda d: NOW + timedelta(days=d)),
)


@given(windows, windows)
def test_a_remembered_intersection_is_the_intersection(a: Window, b: Window) -> None:
    assert _meet(a, b) == a.intersect(b)
    assert _meet(a, b) == a.intersect(b)  # remembered


def merged_as_before(grants: list[Grant]) -> tuple[Grant, ...]:
    """The merge as it was before its shortcut for distinct spaces: one full sort."""
    grants = sorted(grants, key=Grant.sort_key)
    out: list[Grant] = []
    for g in grants:
        if out:
            last = out[-1]
            same = last.space_id == g.space_id and last.schedule == g.schedule
            touches = last.window.end is None or (
                g.window.start is not None and g.window.start <= last.window.end
            )
            if same and touches:
                end = (
                    None
                    if last.window.end is None or g.window.end is None
                    else max(last.window.end, g.window.end)
                )
                out[-1] = Grant(g.space_id, Window(last.window.start, end), g.schedule, last.source)
                continue
        out.append(g)
    return tuple(out)


grants = st.builds(
    Grant,
    st.sampled_from(["s1", "s2", "s3"]),
    windows,
    st.sampled_from([None, WEEKDAYS]),
    st.sampled_from(["application a1 rev 1", "application a2 rev 1"]),
)


@given(st.lists(grants, max_size=6))
def test_merging_grants_gives_what_one_full_sort_gave(items: list[Grant]) -> None:
    merged = _merge(list(items))
    expected = merged_as_before(items)
    assert merged == expected
    assert [g.source for g in merged] == [g.source for g in expected]


def test_a_change_that_keeps_the_next_change_queues_no_second_timer() -> None:
    engine = RulesEngine.build(site(), NOW, RulesConfig())
    queued = len(engine._timers)
    person = Person(id="p1", first_name="A", last_name="Renamed")
    for _ in range(5):
        engine.apply(site()[-1], NOW)  # the applications again: every state as it was
        engine.apply(person, NOW)
    assert len(engine._timers) == queued
    # A change that moves a credential's next change queues its new timer.
    engine.apply(
        Competence(person_id="p1", code="ELSAK", valid_until=TODAY + timedelta(days=5)), NOW
    )
    assert len(engine._timers) > queued
    assert engine.next_change_at() == min(
        s.next_change_at for s in engine.states.values() if s.next_change_at is not None
    )


def test_entries_name_their_spaces_with_the_engine_s_strings() -> None:
    def text(value: str) -> str:
        return "".join(list(value))  # an equal string of its own, as each fact validated has

    facts_in = site()
    facts_in = [
        f.model_copy(
            update={
                "entries": tuple(
                    e.model_copy(update={"space_ids": tuple(text(s) for s in e.space_ids)})
                    for e in f.entries
                )
            }
        )
        if isinstance(f, AccessApplication)
        else f
        for f in facts_in
    ]
    facts = RulesEngine.build(facts_in, NOW, RulesConfig()).facts
    for app in facts.latest_approved.values():
        for entry in app.entries:
            for space_id in entry.space_ids:
                assert space_id is facts.spaces[space_id].id

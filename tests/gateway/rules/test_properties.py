"""Properties of the derivation that must hold for every set of facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain import (
    TERMINAL_STATES,
    AccessApplication,
    ApplicationEntry,
    ApplicationStatus,
    Assignment,
    Competence,
    Credential,
    CredentialKind,
    CredentialState,
    Employment,
    Fact,
    Id06Card,
    Id06Status,
    KeyGrantAgreement,
    Organisation,
    Person,
    Space,
    VisitorCard,
    Window,
    fact_key,
)
from gateway.rules import DesiredCredential, Reason, RulesConfig, RulesEngine
from tests.gateway.rules.universe import BASE, KEYS, ORGS, day, instant, rich_fact_sets

CFG = RulesConfig()
times = st.integers(min_value=-24 * 30, max_value=24 * 30).map(instant)


def covered(grant_window: Window, by: list[Window]) -> bool:
    return any(grant_window.inside(w) for w in by)


def no_more_access(before: DesiredCredential | None, after: DesiredCredential | None) -> None:
    if after is None:
        return
    assert before is not None
    if after.active:
        assert before.active, (before.reasons, after.reasons)
    for g in after.grants:
        old = [
            o.window
            for o in before.grants
            if o.space_id == g.space_id and (o.schedule is None or o.schedule == g.schedule)
        ]
        assert covered(g.window, old), (g, before.grants)


def weakenings(facts: list[Fact]) -> st.SearchStrategy[tuple[list[Fact], str]]:
    """Ways of taking one precondition away (or making it worse)."""
    options: list[tuple[list[Fact], str]] = []
    for i, f in enumerate(facts):
        rest = facts[:i] + facts[i + 1 :]
        if isinstance(f, KeyGrantAgreement | Competence | Employment | Space):
            options.append((rest, f"remove {type(f).__name__} {fact_key(f)}"))
        if isinstance(f, KeyGrantAgreement):
            options.append(
                ([*rest, f.model_copy(update={"terminated_at": BASE})], f"terminate {f.id}")
            )
        if isinstance(f, Employment) and f.id06.status is not Id06Status.TERMINATED:
            blocked = f.model_copy(
                update={"id06": f.id06.model_copy(update={"status": Id06Status.BLOCKED})}
            )
            options.append(([*rest, blocked], f"block {f.id}"))
        if isinstance(f, Credential) and f.state not in TERMINAL_STATES:
            options.append(
                ([*rest, f.model_copy(update={"state": CredentialState.LOST})], f"lose {f.number}")
            )
        if isinstance(f, VisitorCard):
            shorter = f.model_copy(update={"valid_until": f.valid_from + timedelta(minutes=1)})
            options.append(([*rest, shorter], f"shorten {f.number}"))
        if isinstance(f, AccessApplication) and f.entries:
            fewer = f.model_copy(update={"entries": f.entries[1:]})
            options.append(([*rest, fewer], f"drop an entry of {f.assignment_id}"))
    return st.sampled_from(options) if options else st.nothing()


@settings(max_examples=80)
@given(data=st.data(), at=times)
def test_taking_a_precondition_away_never_adds_access(data: st.DataObject, at) -> None:  # type: ignore[no-untyped-def]
    facts = data.draw(rich_fact_sets())
    before = RulesEngine.build(facts, at, CFG)
    weaker, _what = data.draw(weakenings(facts))
    after = RulesEngine.build(weaker, at, CFG)
    for number, state in after.states.items():
        no_more_access(before.states.get(number), state)


@settings(max_examples=40)
@given(data=st.data(), at=times)
def test_facts_in_any_order_give_the_same_state(data: st.DataObject, at) -> None:  # type: ignore[no-untyped-def]
    facts = data.draw(rich_fact_sets())
    shuffled = data.draw(st.permutations(facts))
    a = RulesEngine.build(facts, at, CFG)
    b = RulesEngine.build(shuffled, at, CFG)
    assert a.states == b.states
    for cid in a.controller_ids():
        assert a.controller(cid) == b.controller(cid)


@settings(max_examples=60)
@given(data=st.data(), at=times)
def test_a_blocked_id06_card_deactivates_every_credential_of_the_employment(
    data: st.DataObject,
    at,  # type: ignore[no-untyped-def]
) -> None:
    facts = data.draw(rich_fact_sets())
    employments = [f for f in facts if isinstance(f, Employment)]
    target = data.draw(st.sampled_from(employments))
    blocked = target.model_copy(
        update={"id06": target.id06.model_copy(update={"status": Id06Status.BLOCKED})}
    )
    engine = RulesEngine.build(facts, at, CFG)
    engine.apply(blocked, at)
    holders = engine.facts.credentials_by_employment.get(target.id, set())
    for number in holders:
        state = engine.states[number]
        assert not state.active
        assert not state.grants
        assert state.revoked
        assert Reason.ID06_BLOCKED in state.reasons
    for cid in engine.controller_ids():
        assert not {e.credential for e in engine.controller(cid).entries} & holders


def assert_grants_inside_contributing_windows(engine: RulesEngine, at: datetime) -> None:
    """Every granted window lies inside every window that limits it: the visitor card's, the
    ID06 card's, the agreements', the required competences', and the union of the windows of
    the application entries (each clipped by its assignment) that grant the space on the same
    schedule: grants of several applications that touch or overlap are merged into one."""
    fs = engine.facts
    for number, state in engine.states.items():
        cred = fs.credentials[number]
        for g in state.grants:
            if cred.kind is CredentialKind.VISITOR_CARD:
                card = fs.visitor_cards[number]
                assert g.window.inside(Window(card.valid_from, card.valid_until))
                continue
            assert cred.employment_id is not None
            emp = fs.employments[cred.employment_id]
            assert g.window.inside(Window(None, CFG.day_end(emp.id06.valid_until)))
            agreements = [fs.agreements[a] for a in fs.agreements_by_org[emp.org_number]]
            assert (
                any(
                    g.window.inside(
                        Window(
                            CFG.day_start(a.valid_from),
                            CFG.day_end(a.valid_until) if a.valid_until else None,
                        )
                    )
                    for a in agreements
                )
                or len(agreements) > 1
            )  # merged agreements may span several
            for a in agreements:
                if a.terminated_at is not None and len(agreements) == 1:
                    assert g.window.end is not None and g.window.end <= a.terminated_at
            entries = fs.entries_by_employment[emp.id]
            contributing = [
                Window(CFG.day_start(e.valid_from), CFG.day_end(e.valid_until)).intersect(
                    Window(
                        CFG.day_start(fs.assignments[aid].starts_on),
                        CFG.day_end(fs.assignments[aid].ends_on),
                    )
                )
                for aid, e in entries.items()
                if g.space_id in e.space_ids and e.schedule == g.schedule
            ]
            assert contributing
            assert any(g.window.inside(w) for w in union(contributing)), (g, contributing)
            for code in fs.spaces[g.space_id].required_competences:
                comp = fs.competences[emp.person_id][code]
                assert g.window.inside(Window(None, CFG.day_end(comp.valid_until)))
            assert not g.window.ended_by(at)


def union(windows: list[Window]) -> list[Window]:
    """The windows merged where they overlap or touch (bounded ones only are merged by end)."""
    ordered = sorted(
        (w for w in windows if not w.is_empty()),
        key=lambda w: w.start or datetime.min.replace(tzinfo=UTC),
    )
    out: list[Window] = []
    for w in ordered:
        last = out[-1] if out else None
        if last is not None and (last.end is None or (w.start is not None and w.start <= last.end)):
            end = None if last.end is None or w.end is None else max(last.end, w.end)
            out[-1] = Window(last.start, end)
        else:
            out.append(w)
    return out


@settings(max_examples=80)
@given(data=st.data(), at=times)
def test_every_granted_window_lies_inside_every_contributing_window(
    data: st.DataObject,
    at,  # type: ignore[no-untyped-def]
) -> None:
    facts = data.draw(rich_fact_sets())
    assert_grants_inside_contributing_windows(RulesEngine.build(facts, at, CFG), at)


def test_grants_of_two_applications_that_touch_merge_and_stay_inside_their_union() -> None:
    """Two approved applications grant the same space in consecutive periods: the engine
    merges them into one grant spanning both, which lies inside neither entry alone."""
    org = ORGS[1]
    facts: list[Fact] = [
        Organisation(org_number=org, name="Org"),
        Person(id="p1", first_name="A", last_name="B"),
        KeyGrantAgreement(id="ag", org_number=org, signed_on=day(-60), valid_from=day(-60)),
        Employment(
            id="e2",
            person_id="p1",
            org_number=org,
            id06=Id06Card(card_number="CARD0002", valid_until=day(60)),
        ),
        Space(id="s3", name="S3", cylinders=("4", "5")),
        Credential(
            number=KEYS[1],
            kind=CredentialKind.KEY,
            state=CredentialState.IN_SERVICE,
            employment_id="e2",
        ),
        *(
            Assignment(
                id=a,
                name="A",
                main_contractor=ORGS[0],
                project_manager="PM",
                starts_on=day(-60),
                ends_on=day(60),
            )
            for a in ("a1", "a2")
        ),
    ]
    for aid, first, last in (("a1", -10, 5), ("a2", 6, 20)):
        facts.append(
            AccessApplication(
                assignment_id=aid,
                revision=1,
                status=ApplicationStatus.APPROVED,
                submitted_at=instant(-500),
                decided_at=instant(-400),
                entries=(
                    ApplicationEntry(
                        employment_id="e2",
                        space_ids=("s3",),
                        valid_from=day(first),
                        valid_until=day(last),
                    ),
                ),
            )
        )
    engine = RulesEngine.build(facts, BASE, CFG)
    grants = [g for g in engine.states[KEYS[1]].grants if g.space_id == "s3"]
    assert [g.window for g in grants] == [Window(CFG.day_start(day(-10)), CFG.day_end(day(20)))]
    assert_grants_inside_contributing_windows(engine, BASE)


@settings(max_examples=60)
@given(data=st.data())
def test_a_visitor_card_is_inactive_from_its_valid_until_instant_on(data: st.DataObject) -> None:
    facts = data.draw(rich_fact_sets())
    cards = [f for f in facts if isinstance(f, VisitorCard)]
    card = data.draw(st.sampled_from(cards))
    end = card.valid_until
    later = data.draw(
        st.integers(min_value=0, max_value=10**6).map(lambda s: end + timedelta(seconds=s))
    )
    engine = RulesEngine.build(facts, later, CFG)
    state = engine.states.get(card.number)
    if state is not None:
        assert not state.active
        assert not state.grants
    just_before = RulesEngine.build(facts, end - timedelta(microseconds=1), CFG)
    before_state = just_before.states.get(card.number)
    at_end = RulesEngine.build(facts, end, CFG).states.get(card.number)
    if before_state is not None and before_state.active:
        assert at_end is not None
        assert not at_end.active
        assert Reason.VISITOR_EXPIRED in at_end.reasons

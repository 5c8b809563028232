"""Properties of the derivation that must hold for every set of facts."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain import (
    TERMINAL_STATES,
    AccessApplication,
    Competence,
    Credential,
    CredentialKind,
    CredentialState,
    Employment,
    Fact,
    Id06Status,
    KeyGrantAgreement,
    Space,
    VisitorCard,
    Window,
    fact_key,
)
from gateway.rules import DesiredCredential, Reason, RulesConfig, RulesEngine
from tests.gateway.rules.universe import BASE, instant, rich_fact_sets

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
        old = [o.window for o in before.grants
               if o.space_id == g.space_id and (o.schedule is None or o.schedule == g.schedule)]
        assert covered(g.window, old), (g, before.grants)


def weakenings(facts: list[Fact]) -> st.SearchStrategy[tuple[list[Fact], str]]:
    """Ways of taking one precondition away (or making it worse)."""
    options: list[tuple[list[Fact], str]] = []
    for i, f in enumerate(facts):
        rest = facts[:i] + facts[i + 1:]
        if isinstance(f, KeyGrantAgreement | Competence | Employment | Space):
            options.append((rest, f"remove {type(f).__name__} {fact_key(f)}"))
        if isinstance(f, KeyGrantAgreement):
            options.append(([*rest, f.model_copy(update={"terminated_at": BASE})],
                            f"terminate {f.id}"))
        if isinstance(f, Employment) and f.id06.status is not Id06Status.TERMINATED:
            blocked = f.model_copy(update={"id06": f.id06.model_copy(
                update={"status": Id06Status.BLOCKED})})
            options.append(([*rest, blocked], f"block {f.id}"))
        if isinstance(f, Credential) and f.state not in TERMINAL_STATES:
            options.append(([*rest, f.model_copy(update={"state": CredentialState.LOST})],
                            f"lose {f.number}"))
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
    data: st.DataObject, at  # type: ignore[no-untyped-def]
) -> None:
    facts = data.draw(rich_fact_sets())
    employments = [f for f in facts if isinstance(f, Employment)]
    target = data.draw(st.sampled_from(employments))
    blocked = target.model_copy(update={"id06": target.id06.model_copy(
        update={"status": Id06Status.BLOCKED})})
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


@settings(max_examples=80)
@given(data=st.data(), at=times)
def test_every_granted_window_lies_inside_every_contributing_window(
    data: st.DataObject, at  # type: ignore[no-untyped-def]
) -> None:
    facts = data.draw(rich_fact_sets())
    engine = RulesEngine.build(facts, at, CFG)
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
            assert any(
                g.window.inside(Window(CFG.day_start(a.valid_from),
                                       CFG.day_end(a.valid_until) if a.valid_until else None))
                for a in agreements
            ) or len(agreements) > 1  # merged agreements may span several
            for a in agreements:
                if a.terminated_at is not None and len(agreements) == 1:
                    assert g.window.end is not None and g.window.end <= a.terminated_at
            entries = fs.entries_by_employment[emp.id]
            contributing = [
                (aid, e) for aid, e in entries.items() if g.space_id in e.space_ids
            ]
            assert contributing
            assert any(
                g.window.inside(Window(CFG.day_start(e.valid_from), CFG.day_end(e.valid_until)))
                and g.window.inside(Window(CFG.day_start(fs.assignments[aid].starts_on),
                                           CFG.day_end(fs.assignments[aid].ends_on)))
                for aid, e in contributing
            )
            for code in fs.spaces[g.space_id].required_competences:
                comp = fs.competences[emp.person_id][code]
                assert g.window.inside(Window(None, CFG.day_end(comp.valid_until)))
            assert not g.window.ended_by(at)


@settings(max_examples=60)
@given(data=st.data())
def test_a_visitor_card_is_inactive_from_its_valid_until_instant_on(data: st.DataObject) -> None:
    facts = data.draw(rich_fact_sets())
    cards = [f for f in facts if isinstance(f, VisitorCard)]
    card = data.draw(st.sampled_from(cards))
    end = card.valid_until
    later = data.draw(st.integers(min_value=0, max_value=10**6).map(
        lambda s: end + timedelta(seconds=s)))
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

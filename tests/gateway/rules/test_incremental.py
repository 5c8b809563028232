"""The incremental engine equals a full recomputation after any sequence of changes."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from gateway.domain import Fact, fact_key
from gateway.rules import KeyExposure, RulesEngine, same_state
from tests.gateway.rules.universe import BASE, CYLINDERS, KEYS, facts, rich_fact_sets


def assert_same(incremental: RulesEngine, at: datetime) -> None:
    full = RulesEngine.build(incremental.facts.all_facts(), at, incremental.cfg)
    for serial in list(incremental._exposures):
        full.set_exposure(incremental._exposures[serial])
    assert incremental.states.keys() == full.states.keys()
    for number, state in full.states.items():
        assert same_state(incremental.states[number], state), number
    for cid in full.controller_ids() | incremental.controller_ids():
        assert incremental.controller(cid) == full.controller(cid), cid
    for cyl in CYLINDERS:
        assert incremental.blacklist(cyl) == full.blacklist(cyl), cyl


class IncrementalMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.at = BASE
        self.engine = RulesEngine()
        self.engine.rebuild(self.at)
        self.held: dict[tuple[str, tuple[str, ...]], Fact] = {}

    @initialize(base=rich_fact_sets())
    def load(self, base: list[Fact]) -> None:
        for fact in base:
            self.put(fact)

    @rule(fact=facts)
    def put(self, fact: Fact) -> None:
        self.engine.apply(fact, self.at)
        self.held[(type(fact).__name__, fact_key(fact))] = fact

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.held)))
        fact = self.held.pop(key)
        self.engine.remove(type(fact), fact_key(fact), self.at)

    @rule(hours=st.integers(min_value=1, max_value=24 * 20))
    def advance(self, hours: int) -> None:
        self.at = self.at + timedelta(hours=hours)
        self.engine.advance(self.at)

    @rule(
        serial=st.sampled_from(KEYS),
        cylinders=st.frozensets(st.sampled_from(CYLINDERS), max_size=3),
        lapse_hours=st.none() | st.integers(min_value=-48, max_value=24 * 30),
    )
    def expose(self, serial: str, cylinders: frozenset[str], lapse_hours: int | None) -> None:
        lapses = None if lapse_hours is None else self.at + timedelta(hours=lapse_hours)
        self.engine.set_exposure(KeyExposure(serial, cylinders, lapses))

    @invariant()
    def equals_full_recomputation(self) -> None:
        assert_same(self.engine, self.at)
        active = sum(1 for s in self.engine.states.values() if s.active)
        event(f"active credentials: {min(active, 3)}{'+' if active >= 3 else ''}")


IncrementalMachine.TestCase.settings = settings(
    max_examples=80, stateful_step_count=30, deadline=None
)
TestIncremental = IncrementalMachine.TestCase

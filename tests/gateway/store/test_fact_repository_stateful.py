"""The fact repository behaves like a dictionary keyed by (fact type, fact key)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from gateway.domain import FACT_TYPES, Fact, fact_key
from gateway.store import Database
from gateway.store import fact_repository as facts
from tests.domain_strategies import facts as any_facts
from tests.domain_strategies import small_pools
from tests.gateway.store.util import assert_identical, empty

Key = tuple[type[Fact], tuple[str, ...]]


def _machine(db: Database) -> type[RuleBasedStateMachine]:
    class FactStore(RuleBasedStateMachine):
        """Puts, deletes and reads against the store and a dict; both must always agree."""

        keys = Bundle("keys")

        def __init__(self) -> None:
            super().__init__()
            empty(db)
            self.model: dict[Key, Fact] = {}

        @rule(target=keys, fact=any_facts(small_pools()))
        def put(self, fact: Fact) -> Key:
            with db.session() as s:
                facts.put(s, fact)
            key: Key = (type(fact), fact_key(fact))
            self.model[key] = fact
            return key

        @rule(batch=st.lists(any_facts(small_pools()), min_size=1, max_size=5))
        def put_many(self, batch: list[Fact]) -> None:
            with db.session() as s:
                facts.put_many(s, batch)
            for fact in batch:
                self.model[(type(fact), fact_key(fact))] = fact

        @rule(key=consumes(keys))
        def delete(self, key: Key) -> None:
            kind, parts = key
            with db.session() as s:
                existed = facts.delete(s, kind, *parts)
            assert existed == (key in self.model)
            self.model.pop(key, None)

        @rule(key=keys)
        def get(self, key: Key) -> None:
            kind, parts = key
            with db.session(readonly=True) as s:
                stored = facts.get(s, kind, *parts)
            expected = self.model.get(key)
            if expected is None:
                assert stored is None
            else:
                assert_identical(stored, expected)

        @rule(fact=any_facts(small_pools()))
        def get_or_delete_any_key(self, fact: Fact) -> None:
            key: Key = (type(fact), fact_key(fact))
            with db.session() as s:
                assert facts.get(s, type(fact), *fact_key(fact)) == self.model.get(key)
                existed = facts.delete(s, type(fact), *fact_key(fact))
            assert existed == (key in self.model)
            self.model.pop(key, None)

        @rule(kind=st.sampled_from(FACT_TYPES))
        def all_of(self, kind: type[Fact]) -> None:
            with db.session(readonly=True) as s:
                stored = facts.all_of(s, kind)
                count = facts.count(s, kind)
            expected = {k: f for k, f in self.model.items() if k[0] is kind}
            assert count == len(expected) == len(stored)
            assert {(kind, fact_key(f)): f for f in stored} == expected

        @invariant()
        def load_all_matches(self) -> None:
            if len(self.model) % 3:  # every step would be slow; this samples the states
                return
            with db.session(readonly=True) as s:
                stored = facts.load_all(s)
            assert {(type(f), fact_key(f)): f for f in stored} == self.model
            assert len(stored) == len(self.model)

    return FactStore


def test_the_store_behaves_like_a_dictionary_of_facts(clean_db: Database) -> None:
    examples = 40 if clean_db.dialect == "sqlite" else 15
    options: dict[str, Any] = {
        "max_examples": examples,
        "stateful_step_count": 25,
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
    }
    run_state_machine_as_test(_machine(clean_db), settings=settings(**options))

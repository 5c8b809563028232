"""Fingerprint of what the rules engine derives, to compare two builds of the engine.

Run from the root of each checkout (the engine is imported from the current directory) and
compare the printed digests: equal digests mean the same states (revision, active, reasons,
denied, grants, windows, next change, holder), the same ``explain`` output and the same
controller revisions.

- ``site``: the synthetic site of ``bench/rules.py`` (``--size``, default 20 000), made
  varied (blocked, terminated and expiring ID06 cards, tags with and without HR approval,
  visitor cards, unknown spaces and assignments, expired competences, several entries per
  employment, agreements ending or starting later), derived in full, then changed
  incrementally (new application revisions, removals, time advancing); every credential's
  state after each step, ``explain`` of a sample and every controller's revision.
- ``universes``: ``--examples`` small universes of related facts drawn (derandomized) from
  ``tests/gateway/rules/universe.py``, each derived at several instants, with ``explain`` of
  every credential.

Usage: ``python <this file> [--size N] [--examples K] [--cases FILE]``; prints one JSON
object. Give both runs the same ``--cases`` file: Hypothesis draws other universes in
another checkout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import random
import sys
from datetime import timedelta
from typing import Any

sys.path.insert(0, os.getcwd())
sys.path.insert(1, os.path.dirname(os.path.abspath(__file__)))

from hypothesis import HealthCheck, given, settings
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
    Employment,
    Fact,
    Id06Card,
    Id06Status,
    KeyGrantAgreement,
    VisitorCard,
    VisitorReason,
)
from gateway.rules import RulesConfig, RulesEngine, explain


class Digest:
    """A running SHA-256 over JSON texts, with a count."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.count = 0

    def add(self, value: Any) -> None:
        self.h.update(json.dumps(value, sort_keys=True, default=str).encode())
        self.h.update(b"\n")
        self.count += 1

    def hex(self) -> str:
        return self.h.hexdigest()[:32]


def state_json(engine: RulesEngine, number: str) -> Any:
    s = engine.states.get(number)
    if s is None:
        return None
    body = s.as_json()
    body["holder"] = s.holder
    body["denied_full"] = [[sp, r.value] for sp, r in s.denied]
    body["sources"] = [g.source for g in s.grants]
    return body


def fingerprint(engine: RulesEngine, states: Digest, explains: Digest, sample: int) -> None:
    for number in sorted(engine.states):
        states.add([number, state_json(engine, number)])
    numbers = sorted(engine.facts.credentials)
    step = max(1, len(numbers) // sample) if sample else 0
    for number in numbers[::step] if step else ():
        explains.add(explain(engine, number).as_json())
    for cid in sorted(engine.controller_ids()):
        c = engine.controller(cid)
        states.add([cid, c.revision, len(c.entries)])


def varied_site(n: int) -> list[Fact]:
    """The bench site with variations on a fixed share of its people."""
    from rules import NOW, TODAY, site_facts

    rng = random.Random(7)
    facts = list(site_facts(n))
    out: list[Fact] = []
    for f in facts:
        if isinstance(f, Employment):
            i = int(f.id[1:])
            if i % 97 == 1:
                f = f.model_copy(
                    update={
                        "id06": Id06Card(
                            card_number=f.id06.card_number,
                            valid_until=f.id06.valid_until,
                            status=Id06Status.BLOCKED,
                        )
                    }
                )
            elif i % 97 == 2:
                f = f.model_copy(
                    update={
                        "id06": Id06Card(
                            card_number=f.id06.card_number, valid_until=TODAY - timedelta(days=3)
                        )
                    }
                )
            elif i % 97 == 3:
                f = f.model_copy(
                    update={
                        "id06": Id06Card(
                            card_number=f.id06.card_number, valid_until=TODAY + timedelta(days=2)
                        )
                    }
                )
            elif i % 97 == 4:
                f = f.model_copy(
                    update={
                        "id06": Id06Card(
                            card_number=f.id06.card_number,
                            valid_until=f.id06.valid_until,
                            status=Id06Status.TERMINATED,
                        )
                    }
                )
        elif isinstance(f, Credential):
            i = int(f.number) - 100_000_000
            if i % 89 == 5:
                f = Credential(
                    number=str(200_000_000 + i),
                    kind=CredentialKind.TAG,
                    state=CredentialState.IN_SERVICE,
                    employment_id=f.employment_id,
                    hr_approved_at=NOW - timedelta(days=5) if i % 2 else None,
                )
            elif i % 89 == 6:
                f = f.model_copy(update={"state": CredentialState.HANDED_OUT})
            elif i % 89 == 7:
                f = f.model_copy(update={"state": CredentialState.LOST})
        elif isinstance(f, Competence):
            i = int(f.person_id[1:])
            if i % 7 == 3:
                f = f.model_copy(update={"valid_until": TODAY - timedelta(days=1)})
            elif i % 7 == 6:
                f = f.model_copy(update={"valid_until": TODAY + timedelta(days=4)})
        out.append(f)
    n_spaces = max(1, n // 200)
    # A second assignment naming some of the same people (several entries per employment),
    # one with an unknown space, one whose assignment is not registered, one that starts later.
    for k, (aid, shift) in enumerate((("x-1", 0), ("x-2", 3), ("x-unknown", 6))):
        entries = tuple(
            ApplicationEntry(
                employment_id=f"e{(37 * j + k) % n}",
                space_ids=tuple(
                    sorted(
                        {f"sp-{rng.randrange(n_spaces)}" for _ in range(3)}
                        | ({"sp-missing"} if j % 5 == 0 else set())
                    )
                ),
                valid_from=TODAY + timedelta(days=shift - 2),
                valid_until=TODAY + timedelta(days=shift + 20),
                schedule=None,
            )
            for j in range(60)
        )
        if aid != "x-unknown":
            out.append(
                Assignment(
                    id=aid,
                    name=aid,
                    main_contractor=facts[0].org_number,  # type: ignore[attr-defined]
                    project_manager="PM",
                    starts_on=TODAY - timedelta(days=10),
                    ends_on=TODAY + timedelta(days=15),
                )
            )
        out.append(
            AccessApplication(
                assignment_id=aid,
                revision=1,
                status=ApplicationStatus.APPROVED,
                submitted_at=NOW - timedelta(days=2),
                decided_at=NOW - timedelta(days=1),
                entries=entries,
            )
        )
    for v in range(40):
        start = NOW + timedelta(hours=v - 20)
        out.append(
            VisitorCard(
                number=str(300_000_000 + v),
                holder_name="V",
                company="C",
                mobile="+4670000",
                sponsor_employment_id=f"e{v * 13}",
                reason=VisitorReason.SUPPLIER,
                space_ids=(f"sp-{(v * 10) % n_spaces}", "sp-missing"),
                valid_from=start,
                valid_until=start + timedelta(hours=30),
                issued_at=start,
            )
        )
    out.append(
        KeyGrantAgreement(
            id="ag-0",
            org_number=facts[0].org_number,  # type: ignore[attr-defined]
            signed_on=TODAY - timedelta(days=400),
            valid_from=TODAY - timedelta(days=400),
            valid_until=TODAY + timedelta(days=5),
        )
    )
    out.append(
        KeyGrantAgreement(
            id="ag-1",
            org_number=facts[1].org_number,  # type: ignore[attr-defined]
            signed_on=TODAY,
            valid_from=TODAY + timedelta(days=3),
        )
    )
    return out


def compare_site(n: int, sample: int) -> dict[str, Any]:
    from rules import NOW, application

    states, explains = Digest(), Digest()
    engine = RulesEngine.build(varied_site(n), NOW, RulesConfig())
    fingerprint(engine, states, explains, sample)
    rng = random.Random(3)
    n_spaces = max(1, n // 200)
    changes = Digest()
    for r in range(40):
        a = rng.randrange(max(1, n // 50))
        c = engine.apply(application(a, 2 + r, rng, n_spaces), NOW)
        changes.add(sorted((k, state_json(engine, k)) for k in c.credentials))
        changes.add([sorted(c.controllers), sorted(c.cylinders)])
    c = engine.remove(Employment, ("e12",), NOW)
    changes.add(sorted(c.credentials))
    c = engine.remove(AccessApplication, ("x-1", "1"), NOW)
    changes.add(sorted((k, state_json(engine, k)) for k in c.credentials))
    for days in (1, 3, 6, 30, 400):
        c = engine.advance(NOW + timedelta(days=days))
        changes.add(sorted((k, state_json(engine, k)) for k in c.credentials))
    fingerprint(engine, states, explains, sample)
    return {
        "site_states": states.hex(),
        "site_states_n": states.count,
        "site_explains": explains.hex(),
        "site_explains_n": explains.count,
        "site_changes": changes.hex(),
    }


def compare_universes(examples: int, cases_file: str | None) -> dict[str, Any]:
    """Derive the universes drawn, or those kept in ``cases_file`` (drawn and kept there
    when it does not exist yet: the drawing differs between checkouts, so both builds
    must read the same file)."""
    from tests.gateway.rules.universe import fact_sets, instant, rich_fact_sets

    digest = Digest()
    cases: list[tuple[list[Fact], list[int]]] = []

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        st.one_of(rich_fact_sets(), fact_sets(max_size=40)),
        st.lists(st.integers(-24 * 30, 24 * 30), min_size=1, max_size=3),
    )
    def draw(facts: list[Fact], hours: list[int]) -> None:
        cases.append((facts, hours))

    if cases_file is not None and os.path.exists(cases_file):
        with open(cases_file, "rb") as f:
            cases = pickle.load(f)
    else:
        draw()
        if cases_file is not None:
            with open(cases_file, "wb") as f:
                pickle.dump(cases, f)
    drawn = Digest()
    for facts, hours in cases:
        drawn.add(repr((facts, hours)))
        engine = RulesEngine.build(facts, instant(hours[0]), RulesConfig())
        fingerprint(engine, digest, digest, 10_000)
        for h in hours[1:]:
            engine.advance(max(engine.at, instant(h)))
            fingerprint(engine, digest, digest, 10_000)
    return {"universes": digest.hex(), "universes_n": digest.count, "universes_drawn": drawn.hex()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--examples", type=int, default=1500)
    parser.add_argument("--sample", type=int, default=300, help="credentials explained")
    parser.add_argument(
        "--cases",
        default=None,
        help="file of the universes (pickle): read when it exists, else drawn and written",
    )
    args = parser.parse_args()
    result = compare_universes(args.examples, args.cases)
    result.update(compare_site(args.size, args.sample))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Desired documents in parts: the hub's split keeps every part under the limit (a large
allow-list over several parts), and the agent's store accepts the document only once it has
every part, in any order, repeated parts changing nothing; a stale, older or mismatched part
is refused and the last good state kept."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.agent.local import AgentStore, Refused
from gateway.agent.parts import merge, split, wire
from gateway.bridge.sitepayloads import (
    AllowEntryDoc,
    ControllerDoc,
    ScheduleDoc,
    SiteDesired,
    WindowDoc,
    dump,
)

UNTIL = datetime(2030, 1, 1, tzinfo=UTC)


def controller(
    revision: str, entries: int, start: int = 1_000_000, revoking: bool = False
) -> ControllerDoc:
    return ControllerDoc(
        revision=revision,
        revoking=revoking,
        entries=[
            AllowEntryDoc(
                credential=start + i, doors_mask=3, valid_until=UNTIL, schedule_id=1 + i % 2
            )
            for i in range(entries)
        ],
        schedules=[
            ScheduleDoc(
                schedule_id=s,
                windows=[WindowDoc(days_mask=0x1F, start_minute=360, end_minute=1080)],
            )
            for s in (1, 2)
        ],
    )


def site(revision: int, base: int | None = None, **controllers: ControllerDoc) -> SiteDesired:
    return SiteDesired(
        site="north",
        revision=revision,
        base=base,
        controllers=controllers,
        issued_at=datetime.now(UTC),
    )


@pytest.fixture
def store(tmp_path: Path) -> AgentStore:
    s = AgentStore(tmp_path / "agent.db", "north")
    yield s  # type: ignore[misc]
    s.close()


def test_a_small_document_stays_whole_in_the_form_older_agents_accept() -> None:
    doc = site(1, n1=controller("a", 10))
    assert split(doc, 65536) == [doc]
    assert b'"part' not in dump(doc)
    assert b'"parts":' in dump(split(site(2, n1=controller("b", 3000)), 65536)[0])


def test_split_keeps_every_part_under_the_limit_and_merge_restores_the_document() -> None:
    doc = site(
        7,
        3,
        n3=controller("c", 900, revoking=True),
        n1=controller("a", 50),
        n2=controller("b", 3000),
    )
    assert len(dump(doc)) > 3 * 65536
    parts = split(doc, 65536)
    assert len(parts) > 4
    assert all(len(dump(p)) <= 65536 for p in parts)
    assert {(p.site, p.revision, p.base, p.parts) for p in parts} == {("north", 7, 3, len(parts))}
    assert [p.part for p in parts] == list(range(1, len(parts) + 1))
    # the order holds (revoking n3 first), n2's list is over several parts
    assert next(iter(parts[0].controllers)) == "n3"
    assert sum("n2" in p.controllers for p in parts) > 1
    assert wire(doc, 65536) == [dump(p) for p in parts]
    random.Random(1).shuffle(parts)
    assert merge(parts) == doc


def test_the_agent_accepts_a_document_once_it_has_every_part(store: AgentStore) -> None:
    store.accept(dump(site(1, n1=controller("a", 5))))
    doc = site(2, None, n1=controller("b", 2000), n2=controller("c", 2000))
    parts = split(doc, 65536)
    first, *rest = reversed(parts)
    assert store.accept(dump(first)) is None
    assert store.accept(dump(first)) is None  # a repeated part changes nothing
    for p in rest[:-1]:
        assert store.accept(dump(p)) is None
        assert store.revision() == 1  # nothing changes before the last part
        n1 = store.desired("n1")
        assert n1 is not None and n1.revision == "a"
    accepted = store.accept(dump(rest[-1]))
    assert accepted == doc
    assert store.revision() == 2
    n1 = store.desired("n1")
    assert n1 is not None and n1 == doc.controllers["n1"]
    # the same parts again: stale
    with pytest.raises(Refused, match="revision: 2 is not newer than the held 2"):
        store.accept(dump(parts[0]))


def test_the_agent_refuses_stale_older_and_mismatched_parts_keeping_its_state(
    store: AgentStore,
) -> None:
    store.accept(dump(site(4, n1=controller("a", 5))))
    # a delta in parts against another revision
    delta = split(site(6, 5, n1=controller("b", 2000), n2=controller("c", 2000)), 65536)
    with pytest.raises(Refused, match="base: delta against revision 5, the agent holds 4"):
        store.accept(dump(delta[0]))
    # parts of revision 9 are collected; a part of revision 8 comes after them
    nine = split(site(9, n1=controller("d", 2000), n2=controller("e", 2000)), 65536)
    eight = split(site(8, n1=controller("x", 2000), n2=controller("y", 2000)), 65536)
    store.accept(dump(nine[0]))
    with pytest.raises(
        Refused, match=r"part: part 1/\d+ of revision 8 came after parts of revision 9"
    ):
        store.accept(dump(eight[0]))
    # a part of revision 9 claiming another number of parts
    odd = nine[1].model_copy(update={"parts": nine[1].parts + 1})
    with pytest.raises(Refused, match="does not match the earlier parts"):
        store.accept(dump(odd))
    for p in nine[:-1]:
        store.accept(dump(p))
    assert store.revision() == 4
    # a newer revision drops the parts of the older one
    ten = split(site(10, n1=controller("f", 2000), n2=controller("g", 2000)), 65536)
    for p in ten[:-1]:
        assert store.accept(dump(p)) is None
    with pytest.raises(Refused, match="of revision 9 came after parts of revision 10"):
        store.accept(dump(nine[-1]))
    assert store.revision() == 4
    assert store.accept(dump(ten[-1])) is not None
    assert store.revision() == 10
    n1 = store.desired("n1")
    assert n1 is not None and n1.revision == "f"


def test_a_controller_split_with_two_revisions_is_refused(store: AgentStore) -> None:
    parts = split(site(3, n1=controller("a", 3000)), 65536)
    assert len(parts) > 1
    forged = parts[1].model_copy(
        update={
            "controllers": {"n1": parts[1].controllers["n1"].model_copy(update={"revision": "z"})}
        }
    )
    for p in [parts[0], *parts[2:]]:
        assert store.accept(dump(p)) is None
    with pytest.raises(Refused, match=r"controllers\.n1: revision 'z' in part 2, 'a' before"):
        store.accept(dump(forged))
    assert store.revision() is None

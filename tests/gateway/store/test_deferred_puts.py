"""Deferred puts (group commit of a batch's facts): written once, seen by every read, kept in
order with deletes, discarded with a rolled back transaction."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import event

from gateway.domain import Competence, Person, Space, fact_key
from gateway.store import Database
from gateway.store import fact_repository as facts


def person(pid: str, last: str = "Last") -> Person:
    return Person(id=pid, first_name="First", last_name=last)


def count_writes(db: Database) -> list[str]:
    writes: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.split()[0] in ("INSERT", "DELETE", "UPDATE"):
            writes.append(
                statement.split()[2]
                if statement.startswith(("INSERT", "DELETE"))
                else statement.split()[1]
            )

    event.listen(db.engine, "before_cursor_execute", seen)
    return writes


def test_deferred_puts_of_a_transaction_are_written_once_per_table_at_commit(
    db: Database,
) -> None:
    writes = count_writes(db)
    with db.session() as s:
        for i in range(5):
            facts.put_many(s, [person(f"p{i}")], deferred=True)
            facts.put_many(
                s,
                [Competence(person_id=f"p{i}", code="EL", valid_until=date(2027, 1, 1))],
                deferred=True,
            )
        facts.put_many(s, [person("p0", "Again")], deferred=True)  # the last one wins
        assert writes == []
    assert writes == ["person", "competence"]
    with db.session(readonly=True) as s:
        assert facts.count(s, Person) == 5
        assert facts.get(s, Person, "p0") == person("p0", "Again")


def test_a_read_or_a_delete_in_the_transaction_sees_the_deferred_puts(db: Database) -> None:
    with db.session() as s:
        facts.put_many(s, [person("p1"), person("p2")], deferred=True)
        assert facts.get(s, Person, "p1") == person("p1")
        facts.put_many(s, [person("p3")], deferred=True)
        assert facts.delete(s, Person, "p3")
        facts.put_many(s, [Space(id="sp", name="Space", cylinders=("300001",))], deferred=True)
        facts.put_many(s, [person("p3", "Back")], deferred=True)
    with db.session(readonly=True) as s:
        assert [p.id for p in facts.all_of(s, Person)] == ["p1", "p2", "p3"]
        assert facts.get(s, Person, "p3") == person("p3", "Back")
        space = facts.get(s, Space, "sp")
        assert space is not None and space.cylinders == ("300001",)


def test_deferred_puts_of_a_rolled_back_transaction_are_not_written(db: Database) -> None:
    def aborted() -> None:
        with db.session() as s:
            facts.put_many(s, [person("p1")], deferred=True)
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        aborted()
    with db.session(readonly=True) as s:
        assert facts.count(s, Person) == 0


def test_a_bad_fact_is_refused_at_the_deferred_put_naming_the_field(db: Database) -> None:
    # A value the store cannot hold (built without validation, as no model would take it).
    bad = Person.model_construct(id="p3", first_name="First", last_name="Bad\x00", mobile=None)
    with db.session() as s:
        facts.put_many(s, [person("p1")], deferred=True)
        with pytest.raises(ValueError, match="last_name"):
            facts.put_many(s, [person("p2"), bad], deferred=True)
    with db.session(readonly=True) as s:
        assert [p.id for p in facts.all_of(s, Person)] == ["p1"]


def test_deferred_deletes_are_written_with_the_puts_once_per_table(db: Database) -> None:
    """Deletions interleaved with deferred puts (a batch of competence changes and removals)
    no longer write the puts deferred so far before each deletion."""
    with db.session() as s:
        facts.put_many(s, [person(f"p{i}") for i in range(4)])
        facts.put_many(s, [Competence(person_id="p0", code="OLD", valid_until=date(2027, 1, 1))])
    writes = count_writes(db)
    with db.session() as s:
        for i in range(4):
            facts.put_many(s, [person(f"p{i}", "Changed")], deferred=True)
            facts.put_many(
                s,
                [Competence(person_id=f"p{i}", code="EL", valid_until=date(2027, 1, 1))],
                deferred=True,
            )
            facts.delete_deferred(s, Competence, f"p{i}", "OLD")
        assert writes == []
    assert writes == ["person", "competence", "competence"]  # the upserts and one delete
    with db.session(readonly=True) as s:
        assert [(c.person_id, c.code) for c in facts.all_of(s, Competence)] == [
            (f"p{i}", "EL") for i in range(4)
        ]
        assert {p.last_name for p in facts.all_of(s, Person)} == {"Changed"}


def _stored(db: Database) -> tuple[list[Any], ...]:
    with db.session(readonly=True) as s:
        return tuple(facts.all_of(s, kind) for kind in (Person, Competence, Space))


def test_deferred_deletes_and_puts_end_as_the_same_facts_as_immediate_ones(
    db: Database,
) -> None:
    """Every sequence of puts and deletes, deferred, must leave what the same calls made
    one by one leave: the later of a put and a delete of one fact wins, whatever the order
    in which the types' statements are written."""
    el = date(2027, 1, 1)
    ops: list[tuple[str, Any]] = [
        ("put", person("a", "Put")),
        ("delete", (Person, "a")),  # put, then deleted: gone
        ("delete", (Person, "b")),  # stored, deleted, put again: the new one
        ("put", person("b", "Again")),
        ("delete", (Person, "c")),  # stored, deleted: gone
        ("delete", (Person, "never")),  # nothing to delete
        ("put", Competence(person_id="d", code="EL", valid_until=el)),
        ("delete", (Competence, "d", "EL")),
        ("put", Competence(person_id="d", code="EL", valid_until=date(2028, 1, 1))),
        ("delete", (Space, "sp")),  # an aggregate: children go with it, then it comes back
        ("put", Space(id="sp", name="New", cylinders=("300002", "300003"))),
        ("put", Space(id="sq", name="Gone", cylinders=("300004",))),
        ("delete", (Space, "sq")),
        ("delete", (Space, "sr")),  # stored aggregate deleted
    ]
    results = []
    for deferred in (False, True):
        with db.session() as s:
            for kind in (Person, Competence, Space):
                for fact in facts.all_of(s, kind):
                    facts.delete(s, kind, *fact_key(fact))
            facts.put_many(s, [person("b"), person("c")])
            facts.put_many(s, [Competence(person_id="d", code="EL", valid_until=el)])
            facts.put_many(
                s,
                [
                    Space(id="sp", name="Old", cylinders=("300001",)),
                    Space(id="sr", name="Old", cylinders=("300005",)),
                ],
            )
        with db.session() as s:
            for op, arg in ops:
                if op == "put":
                    facts.put_many(s, [arg], deferred=deferred)
                elif deferred:
                    facts.delete_deferred(s, arg[0], *arg[1:])
                else:
                    facts.delete(s, arg[0], *arg[1:])
        results.append(_stored(db))
    assert results[1] == results[0]
    people, competences, spaces = results[0]
    assert [(p.id, p.last_name) for p in people] == [("b", "Again")]
    assert [c.valid_until for c in competences] == [date(2028, 1, 1)]
    assert [(sp.id, sp.cylinders) for sp in spaces] == [("sp", ("300002", "300003"))]


def test_deferred_deletes_of_a_rolled_back_transaction_are_not_written(db: Database) -> None:
    with db.session() as s:
        facts.put_many(s, [person("p1")])

    def aborted() -> None:
        with db.session() as s:
            facts.delete_deferred(s, Person, "p1")
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        aborted()
    with db.session(readonly=True) as s:
        assert facts.count(s, Person) == 1

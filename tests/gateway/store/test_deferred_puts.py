"""Deferred puts (group commit of a batch's facts): written once, seen by every read, kept in
order with deletes, discarded with a rolled back transaction."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import event

from gateway.domain import Competence, Person, Space
from gateway.store import Database
from gateway.store import fact_repository as facts


def person(pid: str, last: str = "Last") -> Person:
    return Person(id=pid, first_name="First", last_name=last)


def count_writes(db: Database) -> list[str]:
    writes: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.split()[0] in ("INSERT", "DELETE", "UPDATE"):
            writes.append(statement.split()[2] if statement.startswith(("INSERT", "DELETE"))
                          else statement.split()[1])

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
                s, [Competence(person_id=f"p{i}", code="EL", valid_until=date(2027, 1, 1))],
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

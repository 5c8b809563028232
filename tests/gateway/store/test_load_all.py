"""load_all rebuilds the rules engine at start-up: one statement per table, however many facts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import event

from gateway.domain import (
    FACT_TYPES,
    AccessApplication,
    ApplicationEntry,
    ApplicationStatus,
    Assignment,
    Competence,
    Credential,
    CredentialKind,
    CredentialState,
    DeliveryManifest,
    DoorRef,
    Employment,
    Fact,
    Id06Card,
    KeyGrantAgreement,
    KeyOrder,
    Organisation,
    Person,
    Receipt,
    Space,
    VisitorCard,
    VisitorReason,
    fact_key,
)
from gateway.domain.identifiers import org_number_with_check_digit
from gateway.store import Database
from gateway.store import fact_repository as facts

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
FACT_TABLES = [table for kind in FACT_TYPES for table in facts.tables_of(kind)]


def _world(people: int) -> Iterator[Fact]:
    """A site with ``people`` persons, each with an employment, a key and a receipt, plus a
    few of every other fact type (every fact table gets rows)."""
    orgs = [org_number_with_check_digit(f"5560360{i:02d}") for i in range(5)]
    for i, org in enumerate(orgs):
        yield Organisation(org_number=org, name=f"Contractor {i}")
        yield KeyGrantAgreement(
            id=f"kga{i}", org_number=org, signed_on=date(2025, 1, 1), valid_from=date(2025, 1, 1)
        )
        yield KeyOrder(
            id=f"o{i}", org_number=org, quantity=100, delivery_address="Depot 1", ordered_at=T0
        )
        yield DeliveryManifest(
            order_id=f"o{i}",
            delivered_at=T0,
            key_serials=tuple(f"9{i:02d}{k:06d}" for k in range(50)),
        )
    for s in range(20):
        yield Space(
            id=f"s{s}",
            name=f"Equipment room {s}",
            cylinders=tuple(str(1000 + s * 10 + c) for c in range(5)),
            doors=(DoorRef(controller_id=f"c{s % 3}", door=s % 16 + 1),),
            required_competences=("ELSAK",) if s % 2 else (),
        )
    for i in range(people):
        org = orgs[i % len(orgs)]
        yield Person(id=f"p{i}", first_name="Anna", last_name=f"Berg {i}")
        yield Employment(
            id=f"e{i}",
            person_id=f"p{i}",
            org_number=org,
            id06=Id06Card(card_number=f"ID{i:08d}", valid_until=date(2030, 1, 1)),
        )
        yield Credential(
            number=f"{100000000 + i}",
            kind=CredentialKind.KEY,
            state=CredentialState.IN_SERVICE,
            employment_id=f"e{i}",
            order_id=f"o{i % len(orgs)}",
        )
        yield Receipt(
            credential_number=f"{100000000 + i}",
            employment_id=f"e{i}",
            produced_at=T0,
            signed_at=T0 + timedelta(days=1),
        )
        if i % 10 == 0:
            yield Competence(person_id=f"p{i}", code="ELSAK", valid_until=date(2030, 1, 1))
    for a in range(10):
        yield Assignment(
            id=f"a{a}",
            name=f"Signalling upgrade {a}",
            main_contractor=orgs[a % len(orgs)],
            project_manager="Per Persson",
            starts_on=date(2026, 1, 1),
            ends_on=date(2026, 12, 31),
        )
        entries = tuple(
            ApplicationEntry(
                employment_id=f"e{a * 50 + k}",
                space_ids=(f"s{a}", f"s{a + 10}"),
                valid_from=date(2026, 1, 1),
                valid_until=date(2026, 12, 31),
            )
            for k in range(50)
        )
        yield AccessApplication(
            assignment_id=f"a{a}",
            revision=1,
            status=ApplicationStatus.APPROVED,
            submitted_at=T0,
            decided_at=T0,
            entries=entries,
        )
    for v in range(30):
        yield VisitorCard(
            number=str(500000 + v),
            holder_name="Guest",
            company="Supplier AB",
            mobile="+46701234567",
            sponsor_employment_id="e1",
            reason=VisitorReason.SUPPLIER,
            space_ids=("s1", "s2"),
            valid_from=T0,
            valid_until=T0 + timedelta(hours=8),
            issued_at=T0,
        )


def test_load_all_reads_a_large_store_with_one_statement_per_table(clean_db: Database) -> None:
    world = list(_world(people=4_860))
    assert len(world) >= 20_000
    with clean_db.session() as s:
        facts.put_many(s, world)

    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(clean_db.engine, "before_cursor_execute", count)
    try:
        with clean_db.session(readonly=True) as s:
            loaded = facts.load_all(s)
    finally:
        event.remove(clean_db.engine, "before_cursor_execute", count)

    assert len(FACT_TABLES) == 20
    assert len(statements) <= len(FACT_TABLES)
    for table in FACT_TABLES:
        assert any(re.search(rf"FROM {table.name}\b", st) for st in statements), table.name
    assert len(loaded) == len(world)
    assert {(type(f), fact_key(f)): f for f in loaded} == {(type(f), fact_key(f)): f for f in world}

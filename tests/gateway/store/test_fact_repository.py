"""Fact repository: exact round trips, replacement by key, deletion and targeted queries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import func, select, text

from gateway.domain import (
    FACT_TYPES,
    AccessApplication,
    ApplicationEntry,
    ApplicationStatus,
    Credential,
    CredentialKind,
    CredentialState,
    DeliveryManifest,
    DoorRef,
    Employment,
    Fact,
    Id06Card,
    Person,
    Receipt,
    ScheduleInterval,
    Space,
    WeeklySchedule,
    fact_key,
)
from gateway.store import Database
from gateway.store import fact_repository as facts
from gateway.store import tables as t
from tests.domain_strategies import fact_strategy, small_pools
from tests.gateway.store.util import assert_identical, rolled_back

DB_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("kind", FACT_TYPES, ids=lambda k: k.__name__)
def test_every_fact_round_trips_exactly(clean_db: Database, kind: type[Fact]) -> None:
    @DB_SETTINGS
    @given(fact=fact_strategy(kind))
    def round_trip(fact: Fact) -> None:
        with rolled_back(clean_db) as s:
            facts.put(s, fact)
            stored = facts.get(s, kind, *fact_key(fact))
            assert stored is not None
            assert_identical(stored, fact)
            assert facts.delete(s, kind, *fact_key(fact)) is True
            assert facts.get(s, kind, *fact_key(fact)) is None
            assert facts.delete(s, kind, *fact_key(fact)) is False
            rows = sum(
                s.execute(select(func.count()).select_from(table)).scalar_one()
                for table in facts.tables_of(kind)
            )
            assert rows == 0, "deleting a fact leaves no child rows behind"

    round_trip()


@pytest.mark.parametrize("kind", FACT_TYPES, ids=lambda k: k.__name__)
def test_the_bulk_load_builds_the_models_that_validation_builds(
    clean_db: Database, kind: type[Fact]
) -> None:
    """load_all builds models from stored rows without validating them again: they must be
    the models that validating the same rows gives (values, types, fields given, dumps)."""

    @DB_SETTINGS
    @given(fact=fact_strategy(kind))
    def agree(fact: Fact) -> None:
        with rolled_back(clean_db) as s:
            facts.put(s, fact)
            validated = facts.get(s, kind, *fact_key(fact))
            (trusted,) = facts.load_all(s)
        assert validated is not None
        assert_identical(trusted, validated)
        assert trusted == validated
        assert trusted.model_fields_set == validated.model_fields_set
        assert trusted.model_dump() == validated.model_dump()
        assert trusted.model_dump_json() == validated.model_dump_json()
        assert hash(trusted) == hash(validated)
        assert type(trusted).model_validate(trusted.model_dump()) == trusted

    agree()


def test_times_come_back_in_utc_whatever_the_session_time_zone(clean_db: Database) -> None:
    cet = datetime(2026, 7, 1, 10, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Stockholm"))
    receipt = Receipt(
        credential_number="123456789", employment_id="e1", produced_at=cet, signed_at=None
    )
    with clean_db.session() as s:
        facts.put(s, receipt)
    with clean_db.session() as s:
        if clean_db.dialect == "postgresql":
            s.execute(text("SET LOCAL TIME ZONE 'Asia/Kolkata'"))
        stored = facts.get(s, Receipt, "123456789", "e1")
    assert stored is not None
    assert stored.produced_at == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert stored.produced_at.tzinfo is UTC


@pytest.mark.parametrize("kind", FACT_TYPES, ids=lambda k: k.__name__)
def test_storing_a_fact_replaces_the_one_with_the_same_key(
    clean_db: Database, kind: type[Fact]
) -> None:
    @DB_SETTINGS
    @given(batch=st.lists(fact_strategy(kind, small_pools()), min_size=2, max_size=6))
    def replace(batch: list[Fact]) -> None:
        with rolled_back(clean_db) as s:
            for fact in batch:
                facts.put(s, fact)
            stored = {fact_key(f): f for f in facts.all_of(s, kind)}
            assert facts.count(s, kind) == len({fact_key(f) for f in batch})
        expected = {fact_key(f): f for f in batch}
        assert stored.keys() == expected.keys()
        for key, fact in expected.items():
            assert_identical(stored[key], fact)

    replace()


def test_put_many_keeps_the_last_fact_of_a_key(clean_db: Database) -> None:
    first = Person(id="p1", first_name="Anna", last_name="Berg")
    second = Person(id="p1", first_name="Anna", last_name="Lind")
    other = Person(id="p2", first_name="Bo", last_name="Ek")
    with clean_db.session() as s:
        facts.put_many(s, [first, other, second])
    with clean_db.session(readonly=True) as s:
        assert facts.all_of(s, Person) == [second, other]


def test_replacing_an_aggregate_replaces_its_collections(clean_db: Database) -> None:
    big = Space(
        id="s1",
        name="Relay room",
        cylinders=("3", "1", "2"),
        doors=(DoorRef(controller_id="c1", door=2), DoorRef(controller_id="c1", door=1)),
        required_competences=("ELSAK", "BAS-U"),
    )
    small = Space(id="s1", name="Relay room", cylinders=("2",))
    with clean_db.session() as s:
        facts.put(s, big)
    with clean_db.session() as s:
        assert facts.get(s, Space, "s1") == big
        facts.put(s, small)
    with clean_db.session(readonly=True) as s:
        assert facts.get(s, Space, "s1") == small
        rows = {
            table.name: s.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (t.space_cylinder, t.space_door, t.space_competence)
        }
    assert rows == {"space_cylinder": 1, "space_door": 0, "space_competence": 0}


def test_keys_are_checked(clean_db: Database) -> None:
    with clean_db.session(readonly=True) as s:
        with pytest.raises(ValueError, match=r"AccessApplication is identified by 2 key part"):
            facts.get(s, AccessApplication, "a1")
        with pytest.raises(ValueError, match="revision: must be a whole number from 1"):
            facts.get(s, AccessApplication, "a1", "first")
        with pytest.raises(ValueError, match="revision: must be a whole number from 1"):
            facts.get(s, AccessApplication, "a1", str(2**63))
        with pytest.raises(ValueError, match="delivered_at: must carry a time zone"):
            facts.get(s, DeliveryManifest, "o1", "2026-01-01T08:00:00")
        with pytest.raises(ValueError, match="delivered_at: not an ISO 8601"):
            facts.get(s, DeliveryManifest, "o1", "yesterday")
        with pytest.raises(TypeError, match="not a fact type: 'str'"):
            facts.get(s, str, "x")  # type: ignore[type-var]
        with pytest.raises(TypeError, match="id: key parts are strings"):
            facts.get(s, Person, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a fact"), clean_db.session() as s:
        facts.put(s, "Person p1")  # type: ignore[arg-type]


def test_the_domain_refuses_what_a_database_cannot_store() -> None:
    with pytest.raises(ValidationError, match="control characters"):
        Person(id="p1", first_name="An\x00na", last_name="Berg")
    with pytest.raises(ValidationError, match="revision"):
        AccessApplication(
            assignment_id="a1",
            revision=2**63,
            status=ApplicationStatus.SUBMITTED,
            submitted_at=T0,
        )


def test_values_a_database_cannot_store_are_refused_before_anything_is_written(
    clean_db: Database,
) -> None:
    """The same error on both databases, before anything is written."""
    fine = Person(id="p0", first_name="Anna", last_name="Berg")
    # The domain refuses such a code too; built unchecked to reach the store's own guard.
    space = Space.model_construct(
        id="s1",
        name="Relay room",
        cylinders=(),
        doors=(),
        required_competences=("EL\x00SAK",),
        revalidation_days=None,
    )
    with clean_db.session() as s:
        facts.put(s, fine)
        with pytest.raises(ValueError, match=r"Space \(space_competence\)\.code: must not"):
            facts.put(s, space)
    with clean_db.session(readonly=True) as s:
        assert facts.load_all(s) == [fine]


def test_a_delivery_manifest_is_found_by_its_key_in_any_time_zone(clean_db: Database) -> None:
    manifest = DeliveryManifest(
        order_id="o1", delivered_at=T0, key_serials=("100000002", "100000001")
    )
    with clean_db.session() as s:
        facts.put(s, manifest)
    local = T0.astimezone(timezone(timedelta(hours=2))).isoformat()
    with clean_db.session(readonly=True) as s:
        assert facts.get(s, DeliveryManifest, *fact_key(manifest)) == manifest
        assert facts.get(s, DeliveryManifest, "o1", local) == manifest


def test_an_application_keeps_the_order_of_its_spaces_and_its_schedule(
    clean_db: Database,
) -> None:
    entry = ApplicationEntry(
        employment_id="e1",
        space_ids=("s2", "s1"),
        valid_from=date(2026, 1, 1),
        valid_until=date(2026, 6, 30),
        schedule=WeeklySchedule(
            intervals=(ScheduleInterval(days=(0, 1, 2, 3, 4), start="07:00", end="17:30"),)
        ),
    )
    r1 = AccessApplication(
        assignment_id="a1",
        revision=1,
        status=ApplicationStatus.APPROVED,
        submitted_at=T0,
        decided_at=T0 + timedelta(days=3),
        entries=(entry,),
    )
    r2 = AccessApplication(
        assignment_id="a1", revision=2, status=ApplicationStatus.SUBMITTED, submitted_at=T0
    )
    key = Credential(
        number="100000001",
        kind=CredentialKind.KEY,
        state=CredentialState.IN_SERVICE,
        employment_id="e1",
    )
    employment = Employment(
        id="e1",
        person_id="p1",
        org_number="5560360793",
        id06=Id06Card(card_number="abc 123", valid_until=date(2027, 1, 1)),
    )
    receipt = Receipt(credential_number="100000001", employment_id="e1", produced_at=T0)
    with clean_db.session() as s:
        facts.put_many(s, [r2, r1, key, employment, receipt])
    with clean_db.session(readonly=True) as s:
        assert facts.get(s, AccessApplication, "a1", "2") == r2
        assert facts.get(s, Employment, "e1") == employment
        assert facts.get(s, Credential, "100000001") == key
        assert facts.get(s, Receipt, "100000001", "e1") == receipt
        stored = facts.get(s, AccessApplication, "a1", "1")
    assert stored is not None
    assert stored.entries[0].space_ids == ("s2", "s1")
    assert stored.entries[0].schedule == entry.schedule

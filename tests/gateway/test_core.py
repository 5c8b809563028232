"""The core on a real database: commands in, facts, derived states and responses stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from gateway import sample
from gateway.commands import model as m
from gateway.core import Core, Submission
from gateway.domain import DomainError, Id06Status
from gateway.rules import Reason
from gateway.store import desired, migrate
from gateway.store import facts as fact_store
from gateway.store.database import Database

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    migrate.upgrade(db_url)
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def core(db: Database, clock: Clock) -> Core:
    c = Core(db, clock=clock)
    c.load()
    c.submit_many([Submission(cmd, "tester") for cmd in sample.sample_commands(TODAY)],
                  atomic=True)
    return c


def test_the_sample_story_derives_the_expected_states(core: Core) -> None:
    states = core.engine.states
    assert states[sample.KEY_ANNA].active
    assert states[sample.KEY_BJORN_MAIN].active and states[sample.KEY_BJORN_SUB].active
    assert states[sample.KEY_DAVID].reasons == (Reason.ID06_BLOCKED,)
    assert states[sample.KEY_ERIK].reasons == (Reason.NO_APPROVED_APPLICATION,)
    assert states[sample.KEY_FATIMA].reasons == (Reason.RECEIPT_UNSIGNED,)
    assert states[sample.KEY_IN_STOCK].reasons == (Reason.NOT_HANDED_OUT,)
    assert states[sample.KEY_GUSTAV].reasons == (Reason.AGREEMENT_ENDED,)
    assert states[sample.KEY_CECILIA].active
    assert ("sp-tech", Reason.COMPETENCE_MISSING) in states[sample.KEY_CECILIA].denied
    assert states[sample.TAG_ANNA].active and states[sample.VISITOR_CARD].active
    controller = core.engine.controller(sample.CONTROLLER)
    assert {e.credential for e in controller.entries} == {sample.TAG_ANNA, sample.VISITOR_CARD}


def test_derived_states_are_stored_with_the_facts(core: Core, db: Database) -> None:
    with db.session() as s:
        stored = {st.number: st for st in desired.all_credential_states(s)}
        assert fact_store.credential_by_number(s, sample.KEY_ANNA) is not None
    assert stored.keys() == core.engine.states.keys()
    for number, state in core.engine.states.items():
        assert stored[number].revision == state.revision
        assert stored[number].active == state.active


def test_a_request_id_seen_before_returns_the_stored_response_and_changes_nothing(
    core: Core, db: Database
) -> None:
    block = m.BlockId06(card_number="ID06AN0001")
    first = core.submit(Submission(block, "central", request_id="req-1"))
    assert first.ok and not first.duplicate
    unblock = core.submit(Submission(m.UnblockId06(card_number="ID06AN0001"), "central",
                                     request_id="req-2"))
    assert unblock.ok
    again = core.submit(Submission(block, "central", request_id="req-1"))
    assert again.duplicate
    assert again.response() == first.response()
    assert core.engine.facts.employments["emp-anna"].id06.status is Id06Status.ACTIVE


def test_a_refused_command_is_answered_with_field_and_reason_and_stored_nothing(
    core: Core, db: Database
) -> None:
    out = core.submit(Submission(m.HandOut(credential_number=sample.KEY_IN_STOCK,
                                           employment_id="emp-anna"), "op", request_id="r"))
    assert not out.ok
    assert out.error == {
        "code": "CONFLICT",
        "field": "employment_id",
        "message": out.error["message"] if out.error else "",
    }
    assert "one physical key per employment" in out.error["message"]
    with db.session() as s:
        cred = fact_store.credential_by_number(s, sample.KEY_IN_STOCK)
    assert cred is not None and cred.employment_id is None
    # the refusal itself is remembered for the request id
    assert core.submit(Submission(m.HandOut(credential_number=sample.KEY_IN_STOCK,
                                            employment_id="emp-anna"), "op",
                                  request_id="r")).duplicate


def test_an_atomic_batch_is_all_or_nothing(core: Core, db: Database) -> None:
    good = m.BlockId06(card_number="ID06AN0001")
    bad = m.BlockId06(card_number="NOSUCHCARD")
    with pytest.raises(DomainError) as exc:
        core.submit_many([Submission(good, "op"), Submission(bad, "op")], atomic=True)
    assert exc.value.field == "card_number"
    assert core.engine.facts.employments["emp-anna"].id06.status is Id06Status.ACTIVE
    with db.session() as s:
        emp = fact_store.get(s, type(core.engine.facts.employments["emp-anna"]), "emp-anna")
    assert emp is not None and emp.id06.status is Id06Status.ACTIVE


def test_a_second_process_sees_the_first_ones_changes(core: Core, db: Database,
                                                       clock: Clock) -> None:
    other = Core(Database(db.url), clock=clock)
    try:
        other.load()
        assert other.engine.states[sample.KEY_ANNA].active
        core.execute(m.BlockId06(card_number="ID06AN0001"), operator="op")
        changes = other.tick()
        assert sample.KEY_ANNA in changes.credentials
        assert not other.engine.states[sample.KEY_ANNA].active
        other.execute(m.UnblockId06(card_number="ID06AN0001"), operator="op")
        core.tick()
        assert core.engine.states[sample.KEY_ANNA].active
    finally:
        other.db.dispose()


def test_time_passing_expires_the_visitor_card(core: Core, clock: Clock, db: Database) -> None:
    card = core.engine.facts.visitor_cards[sample.VISITOR_CARD]
    clock.now = card.valid_until - timedelta(seconds=1)
    core.tick()
    assert core.engine.states[sample.VISITOR_CARD].active
    clock.now = card.valid_until
    changes = core.tick()
    assert sample.VISITOR_CARD in changes.credentials
    state = core.engine.states[sample.VISITOR_CARD]
    assert not state.active and Reason.VISITOR_EXPIRED in state.reasons
    assert sample.CONTROLLER in changes.controllers
    entries = core.engine.controller(sample.CONTROLLER).entries
    assert sample.VISITOR_CARD not in {e.credential for e in entries}
    with db.session() as s:
        stored = desired.get_credential_state(s, sample.VISITOR_CARD)
    assert stored is not None and not stored.active


def test_a_restart_rebuilds_the_same_state_and_repairs_lagging_rows(
    core: Core, db: Database, clock: Clock
) -> None:
    with db.session() as s:
        desired.delete_credential_state(s, sample.KEY_ANNA)
    again = Core(db, clock=clock)
    changes = again.load()
    assert set(changes.credentials) == {sample.KEY_ANNA}
    assert again.engine.states == core.engine.states
    with db.session() as s:
        assert desired.get_credential_state(s, sample.KEY_ANNA) is not None


def test_stale_application_revisions_are_refused(core: Core) -> None:
    app = core.engine.facts.applications["asg-hallsberg"][1]
    out = core.submit(Submission(m.PutApplication(application=app), "pm"))
    assert not out.ok and out.error is not None
    assert out.error["code"] == "STALE"
    assert out.error["field"] == "application.revision"

"""The core on a real database: commands in, facts, derived states and responses stored."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from gateway.commands import model as m
from gateway.commands.context import CommandContext
from gateway.core import Core, Submission
from gateway.domain import DomainError, Id06Status
from gateway.domain.facts import Credential, Person
from gateway.rules import Reason
from gateway.rules.engine import Changes
from gateway.store import desired, inbox, migrate
from gateway.store import fact_repository as fact_store
from gateway.store.database import Database
from tests import sample

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
    c.submit_many([Submission(cmd, "tester") for cmd in sample.sample_commands(TODAY)], atomic=True)
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
        assert fact_store.get(s, Credential, sample.KEY_ANNA) is not None
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
    unblock = core.submit(
        Submission(m.UnblockId06(card_number="ID06AN0001"), "central", request_id="req-2")
    )
    assert unblock.ok
    again = core.submit(Submission(block, "central", request_id="req-1"))
    assert again.duplicate
    assert again.response() == first.response()
    assert core.engine.facts.employments["emp-anna"].id06.status is Id06Status.ACTIVE


class RecordingListener:
    """Keeps the context of every command the core reports."""

    def __init__(self) -> None:
        self.seen: list[CommandContext] = []

    def __call__(
        self, session: Session, core: Core, ctx: CommandContext | None, changes: Changes
    ) -> None:
        if ctx is not None:
            self.seen.append(ctx)


def test_a_request_id_reused_for_another_request_is_refused_logged_and_reported(
    core: Core, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    listener = RecordingListener()
    core = Core(core.db, clock=core.clock, listeners=[listener])
    core.load()
    person = m.PutPerson(person=Person(id="p-new", first_name="Ny", last_name="Person"))
    assert core.submit(Submission(person, "central", request_id="reused")).ok
    block = m.BlockId06(card_number="ID06AN0001", reason="lost")
    with db.session(readonly=True) as s:
        before = inbox.lookup(s, "reused")
    with caplog.at_level(logging.WARNING, logger="gateway.core"):
        out = core.submit(Submission(block, "central", request_id="reused"))
    assert not out.ok and not out.duplicate
    assert out.error is not None
    assert out.error["code"] == "CONFLICT"
    assert out.error["field"] == "request_id"
    assert "'reused' was already used for a person request" in out.error["message"]
    assert "id06_block request 'reused'" in caplog.text
    # nothing happened: the card is not blocked, the id stays with the person request
    assert core.engine.facts.employments["emp-anna"].id06.status is Id06Status.ACTIVE
    with db.session(readonly=True) as s:
        assert inbox.lookup(s, "reused") == before
    assert listener.seen[-1].refusal == out.error
    assert listener.seen[-1].command == block
    # the same request name with other fields is another request too
    other = m.PutPerson(person=Person(id="p-new", first_name="Annan", last_name="Person"))
    again = core.submit(Submission(other, "central", request_id="reused"))
    assert again.error is not None and again.error["code"] == "CONFLICT"
    assert "'reused' was already used for another request" in again.error["message"]
    assert core.engine.facts.persons["p-new"].first_name == "Ny"


def test_a_replay_of_the_same_request_returns_its_response_however_it_was_spelled(
    core: Core,
) -> None:
    start = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    card = m.ChangeVisitorCard(number=sample.VISITOR_CARD, valid_until=start + timedelta(days=1))
    first = core.submit(Submission(card, "reception", request_id="vc-1"))
    assert first.ok
    same = m.ChangeVisitorCard.model_validate(
        {"number": f" {sample.VISITOR_CARD} ", "valid_until": "2026-11-24T09:00:00+01:00"}
    )
    replay = core.submit(Submission(same, "reception", request_id="vc-1"))
    assert replay.duplicate and replay.response() == first.response()


def test_a_request_id_reused_within_one_batch_is_refused(core: Core) -> None:
    a = m.UnblockId06(card_number="ID06DN0001")
    b = m.BlockId06(card_number="ID06AN0001")
    first, replay, reuse = core.submit_many(
        [
            Submission(a, "central", request_id="batch-1"),
            Submission(a, "central", request_id="batch-1"),
            Submission(b, "central", request_id="batch-1"),
        ]
    )
    assert first.ok and replay.duplicate and replay.response() == first.response()
    assert reuse.error is not None and reuse.error["code"] == "CONFLICT"
    assert core.engine.facts.employments["emp-anna"].id06.status is Id06Status.ACTIVE


def test_records_without_a_digest_are_compared_by_request_name(core: Core, db: Database) -> None:
    response = {"request_id": "old", "status": "ok", "data": {}, "error": None}
    with db.session() as s:
        inbox.record(s, "old", "id06_unblock", response, NOW)
    unblock = m.UnblockId06(card_number="ID06DN0001")
    assert core.submit(Submission(unblock, "central", request_id="old")).duplicate
    out = core.submit(
        Submission(m.BlockId06(card_number="ID06DN0001"), "central", request_id="old")
    )
    assert out.error is not None and out.error["code"] == "CONFLICT"


def test_terminating_an_agreement_lists_every_credential_it_changed(core: Core) -> None:
    main = core.engine.facts.agreements["agr-main"]
    live = {
        n
        for n, st in core.engine.states.items()
        if st.enabled
        and (cred := core.engine.facts.credentials[n]).employment_id is not None
        and core.engine.facts.employments[cred.employment_id].org_number == sample.MAIN
    }
    assert len(live) >= 3
    end = m.PutAgreement(agreement=main.model_copy(update={"terminated_at": NOW}))
    out = core.submit(Submission(end, "central", request_id="end-main"))
    assert out.ok
    listed = out.data["credentials"]
    assert listed == sorted(listed, key=lambda n: (len(n), n))
    assert set(listed) == set(out.changes.credentials)
    assert live <= set(listed)
    assert all(core.engine.states[n].reasons == (Reason.AGREEMENT_ENDED,) for n in live)
    # a change that touches no credential lists none
    org = m.PutOrganisation(organisation=core.engine.facts.organisations[sample.MAIN])
    assert core.submit(Submission(org, "central")).data == {"credentials": []}


def test_a_refused_command_is_answered_with_field_and_reason_and_stored_nothing(
    core: Core, db: Database
) -> None:
    out = core.submit(
        Submission(
            m.HandOut(credential_number=sample.KEY_IN_STOCK, employment_id="emp-anna"),
            "op",
            request_id="r",
        )
    )
    assert not out.ok
    message = out.error["message"] if out.error else ""
    assert out.error == {
        "code": "CONFLICT",
        "field": "employment_id",
        "message": message,
        "errors": [{"field": "employment_id", "message": message}],
    }
    assert "one physical key per employment" in out.error["message"]
    with db.session() as s:
        cred = fact_store.get(s, Credential, sample.KEY_IN_STOCK)
    assert cred is not None and cred.employment_id is None
    # the refusal itself is remembered for the request id
    assert core.submit(
        Submission(
            m.HandOut(credential_number=sample.KEY_IN_STOCK, employment_id="emp-anna"),
            "op",
            request_id="r",
        )
    ).duplicate


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


def test_a_second_process_sees_the_first_ones_changes(
    core: Core, db: Database, clock: Clock
) -> None:
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


def test_the_first_load_freezes_the_site_without_a_full_collection_a_reload_collects(
    core: Core, db: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    collections: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda generation=2: collections.append(generation) or 0)
    started = Core(db, clock=clock)
    started.load()  # a start: nothing else runs yet, a load leaves next to no garbage
    assert collections == []
    started.load()  # after a failed transaction, beside the other threads
    assert collections == [2]
    assert gc.isenabled()


def test_stale_application_revisions_are_refused(core: Core) -> None:
    app = core.engine.facts.applications["asg-hallsberg"][2]  # older than the newest, 3
    out = core.submit(Submission(m.PutApplication(application=app), "pm"))
    assert not out.ok and out.error is not None
    assert out.error["code"] == "STALE"
    assert out.error["field"] == "application.revision"

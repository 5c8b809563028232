"""Retention: personal data and history past the retention period erased, what live
credentials depend on kept, what was erased logged without the data, the chain still valid."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from gateway.audit import log as audit_log
from gateway.charges import charges
from gateway.commands import model as m
from gateway.commands.review import RecordAccessReview
from gateway.config import RetentionSettings, Settings
from gateway.core import Core, Submission
from gateway.domain import (
    ERASED,
    Competence,
    Employment,
    Id06Card,
    Person,
    VisitorReason,
)
from gateway.domain.errors import DomainError
from gateway.retention import RetentionJob, RetentionService
from gateway.reviews import reviews
from gateway.store import device_records as sync_store
from gateway.store.database import Database
from gateway.store.tables import (
    controller_event,
    fact_journal,
    inbox,
    key_audit,
    site_key_visit,
    site_report,
    site_report_floor,
)
from tests import sample
from tests.gateway.audit.util import NOW, TODAY, Clock, add_operator, audited_core
from tests.gateway.audit.util import db as db
from tests.gateway.audit.util import shared_url as shared_url
from tests.gateway.running import gateway_of

PERIOD = RetentionSettings(personal_data_days=730)
YEARS = timedelta(days=800)  # comfortably past the period


def issue(core: Core, number: str, *, hours: int = 8) -> None:
    core.execute(
        m.IssueVisitorCard(
            number=number,
            holder_name=f"Holder {number}",
            company="Visiting AS",
            mobile="+4790000000",
            sponsor_employment_id="emp-anna",
            reason=VisitorReason.SUPPLIER,
            space_ids=("sp-office",),
            valid_until=core.clock() + timedelta(hours=hours),
            confirmed_in_person=True,
            return_duty_acknowledged=True,
        ),
        operator="desk",
    )


def leaver(core: Core) -> None:
    """Olle: registered with a mobile and a competence, his key handed out, returned, his
    ID06 card terminated. Nothing depends on him any more."""
    core.execute(
        m.PutPerson(
            person=Person(id="p-olle", first_name="Olle", last_name="Berg", mobile="+46701234567")
        ),
        operator="desk",
    )
    core.execute(
        m.PutEmployment(
            employment=Employment(
                id="emp-olle",
                person_id="p-olle",
                org_number=sample.MAIN,
                id06=Id06Card(card_number="ID06OB0001", valid_until=TODAY + timedelta(days=30)),
            )
        ),
        operator="desk",
    )
    core.execute(
        m.PutCompetence(
            competence=Competence(
                person_id="p-olle", code="ELSAK", valid_until=TODAY + timedelta(days=30)
            )
        ),
        operator="desk",
    )
    core.execute(
        m.HandOut(credential_number=sample.KEY_IN_STOCK, employment_id="emp-olle"), operator="desk"
    )
    core.execute(
        m.ReportCredential(credential_number=sample.KEY_IN_STOCK, outcome="returned"),
        operator="desk",
    )
    core.execute(
        m.BlockId06(card_number="ID06OB0001", terminate=True, reason="left the company"),
        operator="desk",
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def core(db: Database, clock: Clock) -> Core:
    c = audited_core(db, clock)
    add_operator(db, "desk", "administrator")
    add_operator(db, "cron", "maintenance")
    add_operator(db, "reception", "reception")
    return c


def history(db: Database, at: datetime) -> None:
    """Hardware history at ``at``: a key audit record, a controller event, a key's visit to
    a site's station (a key of its own per instant), a site agent's report applied and the
    floor of a store id of the agent (one per instant)."""
    with db.session() as s:
        sync_store.note_site_key_visit(s, "north", f"K{at:%Y%m%d}", at)
        sync_store.note_applied_reports(s, [("north", "a1", int(at.timestamp()))], at)
        sync_store.raise_report_floor(s, "north", f"b{at:%Y%m%d}", 5, at)
        sync_store.add_key_audit(
            s,
            [
                sync_store.StoredKeyAudit(
                    sample.KEY_ANNA,
                    "key",
                    "200101",
                    sample.KEY_ANNA,
                    int(at.timestamp()),
                    at,
                    "granted",
                    "",
                    0,
                )
            ],
            at,
        )
        sync_store.add_controller_events(
            s,
            [
                sync_store.StoredControllerEvent(
                    sample.CONTROLLER, 1, int(at.timestamp()), "granted", sample.TAG_ANNA, 1, at
                )
            ],
            at,
        )


def count(db: Database, table: object) -> int:
    with db.session(readonly=True) as s:
        return int(s.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_nothing_is_erased_within_the_period(core: Core, db: Database, clock: Clock) -> None:
    leaver(core)
    issue(core, "5000101")
    clock.advance(timedelta(days=700))
    report = RetentionJob(core, PERIOD).run("cron")
    assert not report.erased_anything
    assert core.engine.facts.persons["p-olle"].first_name == "Olle"
    with db.session(readonly=True) as s:
        assert audit_log.entries(s, action="retention.run") == []


def test_everything_past_the_period_is_erased_and_logged_without_the_data(
    core: Core, db: Database, clock: Clock
) -> None:
    leaver(core)
    issue(core, "5000101")  # returned the next day
    issue(core, "5000102", hours=24)  # never handed back
    core.submit(
        Submission(
            m.ReportCredential(credential_number=sample.TAG_ANNA, outcome="lost"),
            "desk",
            request_id="r-lost",
        )
    )
    core.execute(RecordAccessReview(note="first"), operator="desk")
    history(db, NOW)
    clock.advance(timedelta(days=1))
    core.execute(m.ReturnVisitorCard(number="5000101"), operator="desk")
    core.execute(RecordAccessReview(note="second"), operator="desk")
    clock.advance(YEARS)
    history(db, clock())  # recent history stays
    journal_before = count(db, fact_journal)

    dry = RetentionJob(core, PERIOD).run("cron", dry_run=True)
    assert core.engine.facts.persons["p-olle"].first_name == "Olle"  # a dry run changes nothing
    report = RetentionJob(core, PERIOD).run("cron")
    assert report.counts() == dry.counts()

    facts = core.engine.facts
    # the leaver: erased, his competences gone; the sample's people are kept (live credentials)
    olle = facts.persons["p-olle"]
    assert (olle.first_name, olle.last_name, olle.mobile) == (ERASED, ERASED, None)
    assert "p-olle" not in facts.competences or not facts.competences["p-olle"]
    assert facts.persons["p-anna"].first_name == "Anna"
    assert report.persons == ["p-olle"]
    # the returned card is gone entirely; the unreturned one lost its holder's data
    assert "5000101" not in facts.visitor_cards and "5000101" not in facts.credentials
    kept = facts.visitor_cards["5000102"]
    assert (kept.holder_name, kept.erased) == (ERASED, True)
    assert report.visitor_cards_deleted == ["5000101"]
    assert sample.VISITOR_CARD in report.visitor_cards_erased
    assert "5000102" in report.visitor_cards_erased
    # rows: old history, answered requests, journal, charges, the older review
    assert (report.key_audit_rows, report.controller_events) == (1, 1)
    assert count(db, key_audit) == 1 and count(db, controller_event) == 1
    assert report.site_key_visits == 1 and count(db, site_key_visit) == 1
    assert report.site_reports == 2 and count(db, site_report) == 1
    assert count(db, site_report_floor) == 1
    assert report.inbox_records == 1 and count(db, inbox) == 0
    assert report.journal_entries == journal_before - 1  # all but the newest
    with db.session(readonly=True) as s:
        assert charges(s) == [] and len(report.charges) == 1
        assert [r.note for r in reviews(s)] == ["second"]
        # the log: every old personal part erased, the chain intact, the run recorded
        assert audit_log.entries(s, subject="person p-olle")[0].personal is None
        assert all(
            e.personal is None
            for e in audit_log.entries(s, until=clock() - YEARS + timedelta(days=2))
        )
        assert audit_log.verify(s).ok
        [run] = audit_log.entries(s, action="retention.run")
        [command] = audit_log.entries(s, action="retention")
    assert run.actor == command.actor == "cron"
    assert run.data["period_days"] == 730 and "persons" not in run.data
    assert run.data["audit_entries_erased"] == report.audit_entries_erased > 0
    assert command.data["result"]["persons"] == ["p-olle"]
    assert command.data["result"]["delete_cards"] == ["5000101"]
    assert "person p-olle" in command.subjects
    text = str(run.as_json(personal=True)) + str(command.as_json(personal=True))
    for personal in ("Olle", "Berg", "Holder", "+4670", "Helena"):
        assert personal not in text
    # a second run has nothing left to do but the journal entry that was the newest before
    second = RetentionJob(core, PERIOD).run("cron")
    assert {k: v for k, v in second.counts().items() if v} == {"journal_entries": 1}
    assert not RetentionJob(core, PERIOD).run("cron").erased_anything


def test_a_person_active_within_the_period_is_kept(core: Core, db: Database, clock: Clock) -> None:
    leaver(core)
    clock.advance(YEARS)
    with db.session() as s:  # his old key was used at a cylinder last week
        sync_store.add_key_audit(
            s,
            [
                sync_store.StoredKeyAudit(
                    sample.KEY_IN_STOCK,
                    "key",
                    "200101",
                    sample.KEY_IN_STOCK,
                    7,
                    clock() - timedelta(days=7),
                    "denied",
                    "",
                    0,
                )
            ],
            clock(),
        )
    assert RetentionJob(core, PERIOD).run("cron").persons == []
    assert core.engine.facts.persons["p-olle"].first_name == "Olle"


def test_a_person_a_live_credential_depends_on_is_never_erased(
    core: Core, db: Database, clock: Clock
) -> None:
    clock.advance(timedelta(days=3000))  # every sample ID06 card has long expired
    report = RetentionJob(core, PERIOD).run("cron")
    live = {p for p in core.engine.facts.persons if p != "p-gustav"}
    for pid in live:
        assert core.engine.facts.persons[pid].first_name != ERASED
    assert set(report.persons) <= {"p-gustav"} - live


def test_only_administrators_and_maintenance_run_it_and_refusals_are_logged(
    core: Core, db: Database
) -> None:
    with pytest.raises(DomainError, match="may not run_retention"):
        RetentionJob(core, PERIOD).run("reception")
    with db.session(readonly=True) as s:
        [refused] = audit_log.entries(s, action="retention.run")
    assert refused.actor == "reception" and refused.data["status"] == "refused"
    RetentionJob(core, PERIOD).run()  # the built-in retention operator


async def test_the_service_runs_the_job_in_the_gateway(
    core: Core, db: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    leaver(core)
    clock.advance(YEARS)
    settings = Settings(retention=RetentionSettings(personal_data_days=730, run_every_s=0.05))
    service = RetentionService(settings.retention, core)
    gateway = gateway_of(settings, core, services=[service], upgrade=False)
    caplog.set_level(logging.INFO, logger="gateway.retention")
    await gateway.start()
    try:
        deadline = time.monotonic() + 10
        while service.last is None or not service.last.persons:
            assert time.monotonic() < deadline, "the retention service did not run"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.15)  # and it keeps running harmlessly
    finally:
        await gateway.stop()
    assert core.engine.facts.persons["p-olle"].first_name == ERASED
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.retention"]
    assert any("persons 1" in line for line in lines)
    assert not any("Olle" in line for line in lines)
    with db.session(readonly=True) as s:  # (the gateway disposed of it; it reconnects)
        [run] = audit_log.entries(s, action="retention", actor="lockgate-retention")
    assert run.data["result"]["persons"] == ["p-olle"]


def test_facts_written_before_the_log_existed_are_dated_by_the_journal(
    db: Database, clock: Clock
) -> None:
    """An older lockgate wrote facts without an audit log: the fact journal dates them."""
    older = Core(db, clock=clock)
    older.load()
    for pid in ("p-old", "p-renewed", "p-moved"):
        older.execute(
            m.PutPerson(person=Person(id=pid, first_name="Some", last_name="One")),
            operator="older",
        )
    clock.advance(YEARS - timedelta(days=10))
    older.execute(
        m.PutCompetence(
            competence=Competence(person_id="p-renewed", code="ELSAK", valid_until=TODAY)
        ),
        operator="older",
    )
    older.execute(
        m.PutPerson(person=Person(id="p-moved", first_name="Some", last_name="Two")),
        operator="older",
    )
    clock.advance(timedelta(days=10))
    core = audited_core(db, clock, load_sample=False)
    report = RetentionJob(core, PERIOD).run()
    assert report.persons == ["p-old"]
    assert core.engine.facts.persons["p-renewed"].first_name == "Some"
    assert core.engine.facts.persons["p-moved"].last_name == "Two"


async def test_the_first_run_waits_so_that_a_starting_gateway_serves_first(
    core: Core, db: Database
) -> None:
    hourly = RetentionService(RetentionSettings(personal_data_days=730, run_every_s=3600), core)
    assert hourly.first_after_s == RetentionService.FIRST_RUN_AFTER_S
    settings = Settings(retention=RetentionSettings(personal_data_days=730, run_every_s=0.3))
    service = RetentionService(settings.retention, core)
    gateway = gateway_of(settings, core, services=[service], upgrade=False)
    await gateway.start()
    started = time.monotonic()
    try:
        deadline = started + 10
        while service.last is None:
            assert time.monotonic() < deadline, "the retention service did not run"
            await asyncio.sleep(0.01)
        assert time.monotonic() - started >= 0.3
    finally:
        await gateway.stop()

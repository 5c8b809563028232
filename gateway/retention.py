"""Retention: personal data and history older than the retention period are erased.

The period is ``settings.retention.personal_data_days`` (default 730 days: the seed's two
years); the *cutoff* is that many days before now. :class:`RetentionJob` runs from
``lockgate retention run`` and, inside the gateway, from :class:`RetentionService` every
``settings.retention.run_every_s`` seconds. Each run:

1. erases rows of the store directly:

   - the personal part of every audit entry older than the cutoff (the chain still verifies);
   - key audit trails and controller events older than the cutoff (rows);
   - keys' visits to sites' stations, and the site hub's record of the agents' reports it
     applied (what an agent still sends is forgotten long before), older than the cutoff;
   - inbox records (answered requests) and fact journal entries older than the cutoff;
   - lost-card charges older than the cutoff;
   - access reviews older than the cutoff, except the latest one.

2. then erases facts through the core (command ``retention``, so the rules engine, the fact
   journal and the audit log follow):

   - **visitor cards** that still hold their holder's data although their validity ended
     before the cutoff (never handed back): name, company and mobile become ``[erased]``;
     the card itself stays until it is returned or reported lost;
   - **returned or lost visitor cards** closed before the cutoff: what remained of them (the
     card with its sponsor, reason and spaces, and the credential record) is deleted;
   - **persons** with no employment left and no activity since the cutoff: name and mobile
     become ``[erased]`` and their competences are deleted. "No employment left": every
     employment's ID06 card is terminated, or expired before the cutoff, and none of its
     credentials is live (not returned, lost, broken, destroyed or replaced). "No activity":
     no credential of theirs changed state, no approved access period of theirs reaches past
     the cutoff, no visitor card they sponsor is live or was closed since, no audit entry, fact
     change or hardware event about them, their employments or credentials is dated after
     the cutoff. Whatever a live credential depends on is never erased.

What was erased is logged in the audit chain, in the transaction that erased it: the rows as
``retention.run`` (counts and ids, never the data), the facts as the ``retention`` command
(the ids of the persons and cards); and as one log line of counts. Operators and the audit
entries themselves are kept: they are the accountability record.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, cast, delete, func, select
from sqlalchemy.orm import Session

from gateway.audit import log as audit_log
from gateway.auth.authorizer import RETENTION_OPERATOR, Authorizer, Forbidden
from gateway.auth.manage import record_refusal
from gateway.auth.roles import RUN_RETENTION
from gateway.commands.retention import (
    ApplyRetention,
    card_closed_before,
    card_data_expired,
    person_may_go,
)
from gateway.config import RetentionSettings
from gateway.core import Core
from gateway.domain.facts import (
    ERASED,
)
from gateway.rules.factset import FactSet
from gateway.runtime import Gateway, PeriodicService
from gateway.store import inbox, journal
from gateway.store.tables import (
    access_review,
    audit_entry,
    charge,
    controller_event,
    fact_journal,
    key_audit,
    site_key_visit,
    site_report,
    site_report_floor,
)
from gateway.store.tables import inbox as inbox_table

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class RetentionPlan:
    """What a run will erase through the core."""

    cutoff: datetime
    persons: tuple[str, ...] = ()
    erase_cards: tuple[str, ...] = ()
    delete_cards: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.persons or self.erase_cards or self.delete_cards)


def _person_subjects(facts: FactSet, pid: str) -> list[str]:
    out = [f"person {pid}"]
    for eid in facts.employments_by_person.get(pid, ()):
        out.append(f"employment {eid}")
        out += [f"credential {n}" for n in facts.credentials_by_employment.get(eid, ())]
    return out


def _journaled_since(session: Session, kind: str, ids: list[str], cutoff: datetime) -> set[str]:
    """Which of ``ids`` had a fact of ``kind`` written at or after ``cutoff``, by the fact
    journal (the key's first part is compared, so a person's competences count for them)."""
    wanted = set(ids)
    found: set[str] = set()
    key_text = cast(fact_journal.c.key, String)
    for start in range(0, len(ids), 200):
        chunk = ids[start : start + 200]
        where = and_(fact_journal.c.kind == kind, fact_journal.c.at >= cutoff)
        if kind != "Competence":  # single-part keys: compare their JSON text (same on both)
            where = and_(where, key_text.in_([json.dumps([i]) for i in chunk]))
        elif start > 0:
            break  # one pass over the competences serves every id
        for (key,) in session.connection().execute(select(fact_journal.c.key).where(where)):
            if key and str(key[0]) in wanted:
                found.add(str(key[0]))
    return found


def _used_since(session: Session, numbers: list[str], cutoff: datetime) -> set[str]:
    used: set[str] = set()
    for start in range(0, len(numbers), 500):
        chunk = numbers[start : start + 500]
        used |= {
            r.key_serial
            for r in session.connection().execute(
                select(key_audit.c.key_serial)
                .distinct()
                .where(key_audit.c.key_serial.in_(chunk), key_audit.c.at >= cutoff)
            )
        }
        used |= {
            r.credential
            for r in session.connection().execute(
                select(controller_event.c.credential)
                .distinct()
                .where(controller_event.c.credential.in_(chunk), controller_event.c.at >= cutoff)
            )
        }
    return used


def _recently_active(
    session: Session, facts: FactSet, candidates: list[str], cutoff: datetime
) -> set[str]:
    """The candidates with a trace dated at or after ``cutoff`` in the audit log, the fact
    journal or the hardware events."""
    if not candidates:
        return set()
    subjects = {pid: _person_subjects(facts, pid) for pid in candidates}
    logged = audit_log.subjects_active_since(
        session, [s for subs in subjects.values() for s in subs], cutoff
    )
    numbers = sorted(
        {s.split(" ", 1)[1] for subs in subjects.values() for s in subs if s.startswith("cred")}
    )
    used = _used_since(session, numbers, cutoff)
    employments = sorted(
        {s.split(" ", 1)[1] for subs in subjects.values() for s in subs if s.startswith("empl")}
    )
    touched_people = _journaled_since(session, "Person", list(subjects), cutoff)
    touched_people |= _journaled_since(session, "Competence", list(subjects), cutoff)
    touched = _journaled_since(session, "Employment", employments, cutoff)
    touched |= _journaled_since(session, "Credential", numbers, cutoff)
    touched |= used
    active: set[str] = set()
    for pid, subs in subjects.items():
        ids = {s.split(" ", 1)[1] for s in subs if not s.startswith("person ")}
        if logged.intersection(subs) or pid in touched_people or ids & touched:
            active.add(pid)
    return active


def plan(session: Session, facts: FactSet, cutoff: datetime, tz: ZoneInfo) -> RetentionPlan:
    """What the facts and the store say may be erased at ``cutoff`` (dates of the facts are
    read in the site's time zone ``tz``)."""
    candidates = sorted(
        pid
        for pid, p in facts.persons.items()
        if p.first_name != ERASED and person_may_go(facts, pid, cutoff, tz)
    )
    active = _recently_active(session, facts, candidates, cutoff)
    erase: list[str] = []
    remove: list[str] = []
    for number, card in facts.visitor_cards.items():
        cred = facts.credentials.get(number)
        if cred is not None and card_closed_before(cred, card, cutoff):
            remove.append(number)
        elif card_data_expired(card, cutoff):
            erase.append(number)
    return RetentionPlan(
        cutoff=cutoff,
        persons=tuple(p for p in candidates if p not in active),
        erase_cards=tuple(sorted(erase, key=int)),
        delete_cards=tuple(sorted(remove, key=int)),
    )


# ------------------------------------------------------------------ the run


def _ranges(seqs: Iterable[int]) -> list[list[int]]:
    """Sorted numbers as ``[[first, last], ...]`` runs."""
    out: list[list[int]] = []
    for s in sorted(seqs):
        if out and out[-1][1] == s - 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


@dataclass
class RetentionReport:
    """What a run erased (or, in a dry run, would erase): ids and counts, never data."""

    cutoff: datetime
    dry_run: bool = False
    persons: list[str] = field(default_factory=list)
    visitor_cards_erased: list[str] = field(default_factory=list)
    visitor_cards_deleted: list[str] = field(default_factory=list)
    audit_entries_erased: int = 0
    audit_entry_ranges: list[list[int]] = field(default_factory=list)
    key_audit_rows: int = 0
    controller_events: int = 0
    site_key_visits: int = 0
    site_reports: int = 0
    inbox_records: int = 0
    journal_entries: int = 0
    charges: list[int] = field(default_factory=list)
    access_reviews: list[int] = field(default_factory=list)

    @property
    def erased_anything(self) -> bool:
        return any(
            (
                self.persons,
                self.visitor_cards_erased,
                self.visitor_cards_deleted,
                self.audit_entries_erased,
                self.key_audit_rows,
                self.controller_events,
                self.site_key_visits,
                self.site_reports,
                self.inbox_records,
                self.journal_entries,
                self.charges,
                self.access_reviews,
            )
        )

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["cutoff"] = self.cutoff.isoformat()
        return out

    def counts(self) -> dict[str, int]:
        return {
            "persons": len(self.persons),
            "visitor_cards_erased": len(self.visitor_cards_erased),
            "visitor_cards_deleted": len(self.visitor_cards_deleted),
            "audit_entries_erased": self.audit_entries_erased,
            "key_audit_rows": self.key_audit_rows,
            "controller_events": self.controller_events,
            "site_key_visits": self.site_key_visits,
            "site_reports": self.site_reports,
            "inbox_records": self.inbox_records,
            "journal_entries": self.journal_entries,
            "charges": len(self.charges),
            "access_reviews": len(self.access_reviews),
        }


def _count(session: Session, table: Any, column: Any, cutoff: datetime) -> int:
    return int(
        session.connection()
        .execute(select(func.count()).select_from(table).where(column < cutoff))
        .scalar_one()
    )


def _delete_before(session: Session, table: Any, column: Any, cutoff: datetime) -> int:
    n = _count(session, table, column, cutoff)
    if n:
        session.connection().execute(delete(table).where(column < cutoff))
    return n


class RetentionJob:
    """One retention run over a core's facts and store (run it on the core's thread)."""

    def __init__(self, core: Core, settings: RetentionSettings) -> None:
        self.core = core
        self.settings = settings

    def cutoff(self, now: datetime | None = None) -> datetime:
        at = now or self.core.clock()
        return at - timedelta(days=self.settings.personal_data_days)

    def run(self, operator: str = RETENTION_OPERATOR, *, dry_run: bool = False) -> RetentionReport:
        """Erase what the retention period no longer allows; return what was erased."""
        core = self.core
        now = core.clock()
        cutoff = self.cutoff(now)
        report = RetentionReport(cutoff=cutoff, dry_run=dry_run)
        authorizer = core.authorizer

        if isinstance(authorizer, Authorizer):
            try:
                with core.db.session(readonly=True) as s:
                    authorizer.require(s, operator, RUN_RETENTION)
            except Forbidden as exc:
                record_refusal(
                    core.db,
                    at=now,
                    actor=operator,
                    action="retention.run",
                    subjects=[],
                    error=exc,
                )
                raise
        todo = core.transaction(lambda s: plan(s, core.engine.facts, cutoff, core.cfg.timezone))
        if dry_run:
            report.persons = list(todo.persons)
            report.visitor_cards_erased = list(todo.erase_cards)
            report.visitor_cards_deleted = list(todo.delete_cards)
            with core.db.session(readonly=True) as s:
                self._tables(s, report, now, dry_run=True)
            return report
        # The rows first, logged in their own transaction; then the facts, through the core
        # (its audit entry lists what it erased). Each part commits with its own record.
        with core.db.session() as s:
            self._tables(s, report, now, dry_run=False)
            if report.erased_anything:
                summary = report.as_json()
                for facts_part in ("persons", "visitor_cards_erased", "visitor_cards_deleted"):
                    summary.pop(facts_part)
                summary["period_days"] = self.settings.personal_data_days
                summary[audit_log.ERASED_ENTRIES] = report.audit_entry_ranges
                audit_log.append(
                    s, at=now, actor=operator, action="retention.run", subjects=[], data=summary
                )
        if todo:
            data = core.execute(
                ApplyRetention(
                    cutoff=cutoff,
                    persons=todo.persons,
                    erase_cards=todo.erase_cards,
                    delete_cards=todo.delete_cards,
                ),
                operator=operator,
            )
            report.persons = list(data.get("persons", []))
            report.visitor_cards_erased = list(data.get("erase_cards", []))
            report.visitor_cards_deleted = list(data.get("delete_cards", []))
        if report.erased_anything:
            log.info(
                "retention run (cutoff %s) erased: %s",
                cutoff.isoformat(),
                ", ".join(f"{k} {v}" for k, v in report.counts().items() if v),
            )
        return report

    def _tables(self, s: Session, report: RetentionReport, now: datetime, *, dry_run: bool) -> None:
        cutoff = report.cutoff
        if dry_run:
            personal = audit_entry_personal_before(s, cutoff)
            report.audit_entries_erased = len(personal)
            report.audit_entry_ranges = _ranges(personal)
            report.key_audit_rows = _count(s, key_audit, key_audit.c.at, cutoff)
            report.controller_events = _count(s, controller_event, controller_event.c.at, cutoff)
            report.site_key_visits = _count(s, site_key_visit, site_key_visit.c.last_at, cutoff)
            report.site_reports = _count(s, site_report, site_report.c.applied_at, cutoff) + _count(
                s, site_report_floor, site_report_floor.c.raised_at, cutoff
            )
        else:
            erased = audit_log.erase_personal(s, at=now, before=cutoff)
            report.audit_entries_erased = len(erased)
            report.audit_entry_ranges = _ranges(erased)
            report.key_audit_rows = _delete_before(s, key_audit, key_audit.c.at, cutoff)
            report.controller_events = _delete_before(
                s, controller_event, controller_event.c.at, cutoff
            )
            report.site_key_visits = _delete_before(
                s, site_key_visit, site_key_visit.c.last_at, cutoff
            )
            report.site_reports = _delete_before(
                s, site_report, site_report.c.applied_at, cutoff
            ) + _delete_before(s, site_report_floor, site_report_floor.c.raised_at, cutoff)
        report.charges = [
            int(r.id)
            for r in s.connection().execute(select(charge.c.id).where(charge.c.at < cutoff))
        ]
        latest = s.connection().execute(select(func.max(access_review.c.at))).scalar_one_or_none()
        old_reviews = select(access_review.c.id).where(access_review.c.at < cutoff)
        if latest is not None:
            old_reviews = old_reviews.where(access_review.c.at < latest)
        report.access_reviews = [int(r.id) for r in s.connection().execute(old_reviews)]
        if dry_run:
            report.inbox_records = _inbox_before(s, cutoff)
            report.journal_entries = _journal_before(s, cutoff)
            return
        report.inbox_records = inbox.prune(s, cutoff)
        report.journal_entries = journal.prune(s, cutoff)
        if report.charges:
            s.connection().execute(delete(charge).where(charge.c.id.in_(report.charges)))
        if report.access_reviews:
            s.connection().execute(
                delete(access_review).where(access_review.c.id.in_(report.access_reviews))
            )


def audit_entry_personal_before(session: Session, cutoff: datetime) -> list[int]:
    """The entries older than ``cutoff`` that still hold a personal part."""
    audit_log.flush(session)
    rows = session.connection().execute(
        select(audit_entry.c.seq).where(
            and_(audit_entry.c.at < cutoff, audit_entry.c.personal.is_not(None))
        )
    )
    return sorted(int(r.seq) for r in rows)


def _inbox_before(session: Session, cutoff: datetime) -> int:
    return _count(session, inbox_table, inbox_table.c.received_at, cutoff)


def _journal_before(session: Session, cutoff: datetime) -> int:
    top = journal.head(session)
    return int(
        session.connection()
        .execute(
            select(func.count())
            .select_from(fact_journal)
            .where(fact_journal.c.at < cutoff, fact_journal.c.seq < top)
        )
        .scalar_one()
    )


# ------------------------------------------------------------------ the service


class RetentionService(PeriodicService):
    """A gateway service running :class:`RetentionJob` every ``settings.run_every_s``
    seconds, as the built-in operator ``lockgate-retention``. The first run waits
    :attr:`FIRST_RUN_AFTER_S` (or the interval, when shorter) after the gateway started:
    it reads every person's history on the core's thread, which would delay the first
    requests a freshly started gateway serves."""

    name = "retention"
    FIRST_RUN_AFTER_S = 60.0

    def __init__(self, settings: RetentionSettings, core: Core) -> None:
        super().__init__(
            settings.run_every_s,
            first_after_s=min(settings.run_every_s, self.FIRST_RUN_AFTER_S),
        )
        self.settings = settings
        self.job = RetentionJob(core, settings)
        self.last: RetentionReport | None = None

    async def run_once(self, gateway: Gateway) -> None:
        self.last = await gateway.call(self.job.run)


__all__ = ["RetentionJob", "RetentionPlan", "RetentionReport", "RetentionService", "plan"]

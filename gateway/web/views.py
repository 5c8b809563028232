"""What the console's pages and the API's read endpoints show, read on the core thread (the
engine is the core's: it is never read from another thread)."""

from __future__ import annotations

import weakref
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.audit import log as audit_log
from gateway.audit.chain import Entry
from gateway.core import Core
from gateway.domain.facts import CredentialKind, CredentialState
from gateway.domain.locks import LockRef
from gateway.reports.access_review import AccessReview, access_review
from gateway.reports.applications import ApplicationDue, pending_applications
from gateway.reports.expiring import ExpiringItem, expiring
from gateway.reports.exposure import exposure
from gateway.reports.holders import holder_of
from gateway.reviews import last_review
from gateway.rules.explain import Explanation, explain
from gateway.store import device_records
from gateway.store.tables import key_image, sync_job

PAGE_SIZE = 50
LISTED = 20
"""At most this many rows of each dashboard list."""
REVALIDATION_DAYS_AHEAD = 7
EXPIRING_DAYS_AHEAD = 30


@dataclass
class Page:
    """One page of a list: its rows, the page number (from 1) and whether more follow."""

    rows: list[dict[str, Any]]
    page: int
    total: int
    size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


@dataclass
class Dashboard:
    devices: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    revocations: int = 0
    revocation_oldest: datetime | None = None
    exposures: int = 0
    keys_due: list[dict[str, Any]] = field(default_factory=list)
    applications_overdue: list[ApplicationDue] = field(default_factory=list)
    expiring: list[ExpiringItem] = field(default_factory=list)
    job_counts: dict[str, int] = field(default_factory=dict)
    now: datetime | None = None


@dataclass
class JobSummary:
    """Pending sync jobs, counted in the store: per (kind, revocation) the count and the
    oldest, and the most urgent few."""

    counts: dict[tuple[str, bool], tuple[int, datetime]]
    first: list[device_records.Job]


def job_summary(s: Session, limit: int = LISTED) -> JobSummary:
    """Counted with SQL, not loaded: a site may have a job for every key."""
    conn = s.connection()
    # Per priority over the (priority, queued_at) index alone; the few controllers' jobs by
    # their key; the keys' oldest job per priority is the first key row in index order.
    totals = conn.execute(
        select(sync_job.c.priority, func.count(), func.min(sync_job.c.queued_at)).group_by(
            sync_job.c.priority
        )
    ).all()
    controllers = {
        r[0]: (int(r[1]), r[2])
        for r in conn.execute(
            select(sync_job.c.priority, func.count(), func.min(sync_job.c.queued_at))
            .where(sync_job.c.target_kind == "controller")
            .group_by(sync_job.c.priority)
        )
    }
    merged: dict[tuple[str, bool], tuple[int, datetime]] = {}

    def add(key: tuple[str, bool], n: int, oldest: datetime) -> None:
        if key in merged:
            m, old = merged[key]
            merged[key] = (m + n, min(old, oldest))
        else:
            merged[key] = (n, oldest)

    for priority, total, _ in totals:
        n_ctrl, ctrl_oldest = controllers.get(priority, (0, None))
        if n_ctrl and ctrl_oldest is not None:
            add(("controller", priority == 0), n_ctrl, ctrl_oldest)
        n_keys = int(total) - n_ctrl
        if n_keys:
            key_oldest = conn.execute(
                select(sync_job.c.queued_at)
                .where(sync_job.c.priority == priority, sync_job.c.target_kind == "key")
                .order_by(sync_job.c.queued_at)
                .limit(1)
            ).scalar_one()
            add(("key", priority == 0), n_keys, key_oldest)
    first: list[device_records.Job] = []
    if limit:
        # In the order of the (priority, queued_at) index: only ``limit`` rows are read.
        for r in conn.execute(
            select(sync_job).order_by(sync_job.c.priority, sync_job.c.queued_at).limit(limit)
        ):
            first.append(
                device_records.Job(
                    r.target_kind,
                    r.target_id,
                    r.priority,
                    r.desired_revision,
                    r.queued_at,
                    r.attempts,
                    r.last_attempt_at,
                    r.last_error,
                )
            )
    return JobSummary(merged, first)


MEMO_S = 600
"""Dashboard lists that move with time (expiring, overdue) are recomputed this often."""
SETTLE_S = 60.0
"""...and after a change of the facts at most this often."""


class _Memo:
    """A result that changes only with the facts (the core's journal position) and, when
    ``timed``, with time (by :data:`MEMO_S`): kept until either moves. With ``settle_s`` a
    change of the facts is picked up at most that often (a dashboard list may lag a little;
    the core thread does not recompute it after every change)."""

    def __init__(self) -> None:
        self.seq: int | None = None
        self.period = 0
        self.at = 0.0
        self.value: Any = None

    def get(self, core: Core, make: Any, timed: bool, settle_s: float) -> Any:
        now = core.clock().timestamp()
        period = int(now // MEMO_S) if timed else 0
        fresh = self.seq == core.journal_seq or (self.seq is not None and now - self.at < settle_s)
        if not fresh or period != self.period:
            self.value, self.seq, self.period, self.at = make(), core.journal_seq, period, now
        return self.value


_MEMOS: weakref.WeakKeyDictionary[Core, dict[str, _Memo]] = weakref.WeakKeyDictionary()


def memo(core: Core, name: str, make: Any, *, timed: bool = True, settle_s: float = 0.0) -> Any:
    """``make()``, remembered per core (see :class:`_Memo`)."""
    memos = _MEMOS.setdefault(core, {})
    return memos.setdefault(name, _Memo()).get(core, make, timed, settle_s)


def devices(core: Core) -> list[dict[str, Any]]:
    with core.db.session(readonly=True) as s:
        return [
            {
                "device_id": d.device_id,
                "role": d.role,
                "online": d.online,
                "reason": d.reason,
                "changed_at": d.changed_at,
            }
            for d in device_records.device_statuses(s)
        ]


def dashboard(core: Core, working_days: int = 10, expedited_days: int = 3) -> Dashboard:
    now = core.clock()
    out = Dashboard(now=now)
    engine = core.engine
    with core.db.session(readonly=True) as s:
        out.devices = [
            {"device_id": d.device_id, "role": d.role, "online": d.online, "reason": d.reason}
            for d in device_records.device_statuses(s)
        ]
        summary = job_summary(s)
        out.jobs = [
            {
                "kind": j.target_kind,
                "target": j.target_id,
                "revocation": j.priority == 0,
                "age_s": int((now - j.queued_at).total_seconds()),
                "attempts": j.attempts,
                "error": j.last_error,
            }
            for j in summary.first
        ]
        out.job_counts = {
            kind: sum(n for (k, _), (n, _) in summary.counts.items() if k == kind)
            for kind in ("key", "controller")
        }
        revocations = [v for (_, revoking), v in summary.counts.items() if revoking]
        out.revocations = sum(n for n, _ in revocations)
        out.revocation_oldest = min((oldest for _, oldest in revocations), default=None)
        out.exposures = len(exposure(s, engine, now))
        ahead = now + timedelta(days=REVALIDATION_DAYS_AHEAD)
        out.keys_due = [
            {"serial": r.serial, "lapses_at": r.lapses_at, "station": r.station_id}
            for r in s.connection().execute(
                select(key_image.c.serial, key_image.c.lapses_at, key_image.c.station_id)
                .where(
                    key_image.c.enabled.is_(True),
                    key_image.c.lapses_at >= now,
                    key_image.c.lapses_at <= ahead,
                )
                .order_by(key_image.c.lapses_at)
                .limit(LISTED)
            )
        ]
    facts = engine.facts
    out.applications_overdue = memo(
        core,
        "overdue",
        lambda: [
            a
            for a in pending_applications(
                [a for by in facts.applications.values() for a in by.values()],
                facts.assignments,
                now=now,
                tz=core.cfg.timezone,
                working_days=working_days,
                expedited_working_days=expedited_days,
            )
            if a.overdue
        ],
        settle_s=SETTLE_S,
    )
    out.expiring = memo(
        core,
        "expiring",
        lambda: expiring(
            now=now,
            days=EXPIRING_DAYS_AHEAD,
            tz=core.cfg.timezone,
            agreements=(),
            employments=facts.employments.values(),
            competences=[c for by in facts.competences.values() for c in by.values()],
            visitor_cards=(),
            credential_lapses={},
        )[:LISTED],
        settle_s=SETTLE_S,
    )
    return out


def expiring_items(core: Core, days: int) -> list[ExpiringItem]:
    facts = core.engine.facts
    lapses = {
        n: st.window.end
        for n, st in core.engine.states.items()
        if st.active and st.window is not None and st.window.end is not None
    }
    return expiring(
        now=core.clock(),
        days=days,
        tz=core.cfg.timezone,
        agreements=facts.agreements.values(),
        employments=facts.employments.values(),
        competences=[c for by in facts.competences.values() for c in by.values()],
        visitor_cards=facts.visitor_cards.values(),
        credential_lapses=lapses,
    )


def _number_key(n: str) -> tuple[int, str]:
    return (len(n), n)


def credentials(core: Core, query: str, page: int, size: int = PAGE_SIZE) -> Page:
    """Credentials whose number, holder, kind or state contains ``query`` (case-insensitive),
    in number order."""
    engine = core.engine
    facts = engine.facts
    q = query.strip().casefold()
    if q:
        numbers = [n for n, text in search_index(core) if q in text]
    else:
        numbers = memo(
            core, "numbers", lambda: sorted(facts.credentials, key=_number_key), timed=False
        )
    start = (max(1, page) - 1) * size
    rows = []
    for n in numbers[start : start + size]:
        cred = facts.credentials[n]
        st = engine.states.get(n)
        rows.append(
            {
                "number": n,
                "kind": cred.kind.value,
                "state": cred.state.value,
                "holder": holder_of(engine, n),
                "active": bool(st and st.active),
                "until": st.window.end if st and st.window else None,
                "reasons": ", ".join(r.value for r in st.reasons) if st else "",
            }
        )
    return Page(rows, max(1, page), len(numbers), size)


def search_index(core: Core) -> list[tuple[str, str]]:
    """(number, what a search matches: number, kind, state and holder, folded) of every
    credential in number order, remembered until the facts change."""
    engine = core.engine

    def build() -> list[tuple[str, str]]:
        facts = engine.facts
        return [
            (
                n,
                " ".join(
                    (
                        n,
                        facts.credentials[n].kind.value,
                        facts.credentials[n].state.value,
                        holder_of(engine, n),
                    )
                ).casefold(),
            )
            for n in sorted(facts.credentials, key=_number_key)
        ]

    found: list[tuple[str, str]] = memo(core, "search", build, timed=False)
    return found


def people(core: Core, query: str, limit: int = LISTED) -> list[dict[str, Any]]:
    """Persons whose id or name contains ``query`` (case-insensitive), each with their
    employments (organisation, ID06 card and its status) and credentials."""
    q = query.strip().casefold()
    if not q:
        return []
    facts = core.engine.facts
    out: list[dict[str, Any]] = []
    for person in sorted(facts.persons.values(), key=lambda p: (p.last_name, p.first_name, p.id)):
        name = f"{person.first_name} {person.last_name}"
        if q not in person.id.casefold() and q not in name.casefold():
            continue
        employments = []
        for eid in sorted(facts.employments_by_person.get(person.id, ())):
            emp = facts.employments.get(eid)
            if emp is None:
                continue
            org = facts.organisations.get(emp.org_number)
            employments.append(
                {
                    "id": eid,
                    "organisation": org.name if org else emp.org_number,
                    "id06": emp.id06.card_number,
                    "id06_status": emp.id06.status.value,
                    "credentials": sorted(
                        facts.credentials_by_employment.get(eid, ()), key=_number_key
                    ),
                }
            )
        out.append({"id": person.id, "name": name, "employments": employments})
        if len(out) >= limit:
            break
    return out


@dataclass
class CredentialView:
    number: str
    kind: str
    state: str
    holder: str
    explanation: Explanation
    stored: dict[str, Any] | None


def credential(core: Core, number: str, lock: LockRef | None = None) -> CredentialView | None:
    engine = core.engine
    cred = engine.facts.credentials.get(number)
    if cred is None:
        return None
    from gateway.store import desired

    with core.db.session(readonly=True) as s:
        stored = desired.get_credential_state(s, number)
    return CredentialView(
        number,
        cred.kind.value,
        cred.state.value,
        holder_of(engine, number),
        explain(engine, number, lock),
        stored.body if stored else None,
    )


def awaiting_hr(core: Core) -> list[dict[str, Any]]:
    """Employee cards (tags) handed out or in service that HR has not approved yet."""
    engine = core.engine
    return [
        {"number": c.number, "holder": holder_of(engine, c.number), "state": c.state.value}
        for c in engine.facts.credentials.values()
        if c.kind is CredentialKind.TAG
        and c.hr_approved_at is None
        and c.state in (CredentialState.HANDED_OUT, CredentialState.IN_SERVICE)
    ][:PAGE_SIZE]


def unsigned_receipts(core: Core) -> list[dict[str, Any]]:
    """Keys and tags handed out whose receipt is not signed yet."""
    engine = core.engine
    return [
        {"number": c.number, "kind": c.kind.value, "holder": holder_of(engine, c.number)}
        for n, c in sorted(engine.facts.credentials.items(), key=lambda kv: _number_key(kv[0]))
        if c.state is CredentialState.HANDED_OUT
    ][:PAGE_SIZE]


def visitor_cards(core: Core) -> list[dict[str, Any]]:
    """Visitor cards not returned, soonest to expire first."""
    now = core.clock()
    engine = core.engine
    rows = []
    for card in engine.facts.visitor_cards.values():
        if card.returned_at is not None:
            continue
        st = engine.states.get(card.number)
        rows.append(
            {
                "number": card.number,
                "holder": holder_of(engine, card.number),
                "valid_until": card.valid_until,
                "left_s": int((card.valid_until - now).total_seconds()),
                "spaces": ", ".join(card.space_ids),
                "active": bool(st and st.active),
            }
        )
    return sorted(rows, key=lambda r: r["valid_until"])


def visitor_card(core: Core, number: str) -> dict[str, Any] | None:
    card = core.engine.facts.visitor_cards.get(number)
    if card is None:
        return None
    return card.model_dump() | {"holder": holder_of(core.engine, number)}


def sponsors_and_spaces(core: Core) -> tuple[list[tuple[str, str]], list[str]]:
    """(employment id, who) of every employment, and every space with doors (reception)."""
    engine = core.engine
    facts = engine.facts
    emps = []
    for emp in facts.employments.values():
        person = facts.persons.get(emp.person_id)
        who = f"{person.first_name} {person.last_name}" if person else emp.person_id
        emps.append((emp.id, f"{who} ({emp.id})"))
    spaces = sorted(sid for sid, sp in facts.spaces.items() if sp.doors)
    return sorted(emps), spaces


def audit(
    core: Core,
    *,
    actor: str | None,
    action: str | None,
    subject: str | None,
    since: datetime | None,
    until: datetime | None,
    page: int,
    size: int = PAGE_SIZE,
) -> Page:
    """Audit entries matching the filters, newest first."""
    with core.db.session(readonly=True) as s:
        found: list[Entry] = audit_log.entries(
            s, actor=actor, action=action, subject=subject, since=since, until=until
        )
    found.reverse()
    start = (max(1, page) - 1) * size
    rows = [
        {
            "seq": e.seq,
            "at": e.at,
            "actor": e.actor,
            "action": e.action,
            "subject": e.subject,
            "data": e.data,
        }
        for e in found[start : start + size]
    ]
    return Page(rows, max(1, page), len(found), size)


def verify_audit(core: Core) -> dict[str, Any]:
    with core.db.session(readonly=True) as s:
        result = audit_log.verify(s)
    problem = result.problem
    return {
        "ok": result.ok,
        "entries": result.entries,
        "head_seq": result.head.seq if result.head else None,
        "problem": None
        if problem is None
        else {"seq": problem.seq, "kind": problem.kind, "message": problem.message},
    }


def exposure_rows(core: Core) -> list[dict[str, Any]]:
    with core.db.session(readonly=True) as s:
        return [r.as_json() for r in exposure(s, core.engine, core.clock())]


def applications_due(core: Core, working_days: int, expedited_days: int) -> list[dict[str, Any]]:
    facts = core.engine.facts
    due = pending_applications(
        [a for by in facts.applications.values() for a in by.values()],
        facts.assignments,
        now=core.clock(),
        tz=core.cfg.timezone,
        working_days=working_days,
        expedited_working_days=expedited_days,
    )
    return [
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(a).items()}
        for a in due
    ]


def review(core: Core) -> AccessReview:
    """The quarterly access review now."""
    with core.db.session(readonly=True) as s:
        last = last_review(s)
    return access_review(core.engine, core.clock(), last, core.cfg.timezone)


__all__ = [
    "PAGE_SIZE",
    "CredentialView",
    "Dashboard",
    "Page",
    "applications_due",
    "audit",
    "credential",
    "credentials",
    "dashboard",
    "devices",
    "expiring_items",
    "exposure_rows",
    "sponsors_and_spaces",
    "verify_audit",
    "visitor_card",
    "visitor_cards",
]

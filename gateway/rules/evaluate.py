"""Derivation of one credential's desired state from the facts, with an optional trace.

This is the single place where the policy lives. :func:`evaluate` checks every condition
the domain sets (DOMAIN.md §1, §2), intersects every contributing window and returns a
:class:`DesiredCredential`. With ``trace`` set, it also records every check it made, the fact
the check came from and whether it held: that trace is what ``explain`` shows.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from gateway.domain.facts import (
    TERMINAL_STATES,
    Credential,
    CredentialKind,
    CredentialState,
    Employment,
    Id06Status,
    Space,
)
from gateway.domain.timeutil import WeeklySchedule, Window
from gateway.rules.factset import FactSet
from gateway.rules.parameters import RulesConfig
from gateway.rules.reasons import REVOCATION_REASONS, Reason


@dataclass(frozen=True, slots=True)
class Grant:
    """Access to one space in one window, optionally restricted by a weekly schedule."""

    space_id: str
    window: Window
    schedule: WeeklySchedule | None = None
    source: str = ""

    def sort_key(self) -> tuple[str, float, float, str]:
        return (
            self.space_id,
            self.window.start.timestamp() if self.window.start else -math.inf,
            self.window.end.timestamp() if self.window.end else math.inf,
            schedule_text(self.schedule),
        )


_SCHEDULE_TEXT: dict[WeeklySchedule, str] = {}


def schedule_text(schedule: WeeklySchedule | None) -> str:
    """A canonical, process-independent text of a schedule (cached: schedules repeat)."""
    if schedule is None:
        return ""
    text = _SCHEDULE_TEXT.get(schedule)
    if text is None:
        if len(_SCHEDULE_TEXT) > 10000:
            _SCHEDULE_TEXT.clear()
        text = repr(schedule.key())
        _SCHEDULE_TEXT[schedule] = text
    return text


@dataclass(frozen=True, slots=True)
class Check:
    """One condition checked for ``explain``: what, from which fact, whether it held."""

    condition: str
    held: bool
    source: str
    detail: str = ""
    reason: Reason | None = None
    window: Window | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "condition": self.condition,
            "held": self.held,
            "source": self.source,
            "detail": self.detail,
            "reason": self.reason.value if self.reason else None,
            "window": self.window.as_json() if self.window else None,
        }


@dataclass(frozen=True, slots=True)
class DesiredCredential:
    """The desired state of one credential at ``computed_at``.

    ``enabled`` is true when every condition that is not a time window holds (the credential
    is handed out, signed, its holder's ID06 card is not blocked, ...). ``grants`` are the
    spaces it may open, each with its own window and schedule, already clipped by every
    contributing window; grants whose window has ended are dropped, future ones are kept so
    that a key can be programmed ahead. ``active`` is true when enabled and some grant's window
    contains ``computed_at``. ``reasons`` say why it is not active (empty when active).
    ``revision`` is a stable hash of everything a device must hold for this credential.
    """

    number: str
    kind: CredentialKind
    enabled: bool
    active: bool
    reasons: tuple[Reason, ...]
    grants: tuple[Grant, ...]
    denied: tuple[tuple[str, Reason], ...]
    window: Window | None
    revalidation_days: int | None
    revision: str
    computed_at: datetime
    next_change_at: datetime | None
    holder: str | None = None

    @property
    def revoked(self) -> bool:
        """True when the credential must be shut off (not merely not yet active)."""
        return any(r in REVOCATION_REASONS for r in self.reasons)

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "kind": self.kind.value,
            "enabled": self.enabled,
            "active": self.active,
            "reasons": [r.value for r in self.reasons],
            "grants": [
                {
                    "space": g.space_id,
                    "window": g.window.as_json(),
                    "schedule": g.schedule.model_dump(mode="json") if g.schedule else None,
                }
                for g in self.grants
            ],
            "denied": [{"space": s, "reason": r.value} for s, r in self.denied],
            "window": self.window.as_json() if self.window else None,
            "revalidation_days": self.revalidation_days,
            "revision": self.revision,
            "computed_at": self.computed_at.isoformat(),
            "next_change_at": self.next_change_at.isoformat() if self.next_change_at else None,
        }


def _agreement_window(facts: FactSet, org: str, at: datetime, cfg: RulesConfig) -> Window | None:
    """The agreement interval that matters at ``at``: the one containing it, else the next
    one to start, else the last one that ended. Overlapping agreements are merged."""
    spans: list[Window] = []
    for aid in facts.agreements_by_org.get(org, ()):
        a = facts.agreements[aid]
        w = Window(
            cfg.day_start(a.valid_from), cfg.day_end(a.valid_until) if a.valid_until else None
        )
        if a.terminated_at is not None:
            w = w.intersect(Window(None, a.terminated_at))
        if not w.is_empty():
            spans.append(w)
    if not spans:
        return None
    spans.sort(key=lambda w: w.start or at.min.replace(tzinfo=at.tzinfo))
    merged: list[Window] = [spans[0]]
    for w in spans[1:]:
        last = merged[-1]
        if last.end is None or (w.start is not None and w.start <= last.end):
            end = None if last.end is None or w.end is None else max(last.end, w.end)
            merged[-1] = Window(last.start, end)
        else:
            merged.append(w)
    for w in merged:
        if w.contains(at):
            return w
    future = [w for w in merged if w.not_started_at(at)]
    return future[0] if future else merged[-1]


def _revision(
    number: str,
    kind: CredentialKind,
    enabled: bool,
    grants: tuple[Grant, ...],
    revalidation: int | None,
    facts: FactSet,
) -> str:
    parts: list[str] = [number, kind.value, "1" if enabled else "0", str(revalidation)]
    for g in grants:
        parts.append(g.space_id)
        parts.append(facts.space_digests.get(g.space_id, ""))
        parts.append(str(g.window.start.timestamp()) if g.window.start else "-")
        parts.append(str(g.window.end.timestamp()) if g.window.end else "-")
        parts.append(schedule_text(g.schedule))
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


def _merge(grants: list[Grant]) -> tuple[Grant, ...]:
    """Canonical form: per (space, schedule), overlapping or touching windows merged."""
    grants.sort(key=Grant.sort_key)
    out: list[Grant] = []
    for g in grants:
        if out:
            last = out[-1]
            same = last.space_id == g.space_id and last.schedule == g.schedule
            touches = last.window.end is None or (
                g.window.start is not None and g.window.start <= last.window.end
            )
            if same and touches:
                end = (
                    None
                    if last.window.end is None or g.window.end is None
                    else max(last.window.end, g.window.end)
                )
                out[-1] = Grant(g.space_id, Window(last.window.start, end), g.schedule, last.source)
                continue
        out.append(g)
    return tuple(out)


Detail = str | Callable[[], str]
"""A check's detail; a callable is only called when a trace is being recorded."""


def _dated(prefix: str, day: date) -> Callable[[], str]:
    return lambda: f"{prefix} {day.isoformat()}"


def _joined(prefix: str, items: tuple[str, ...]) -> Callable[[], str]:
    return lambda: f"{prefix} {', '.join(items)}"


def _text(detail: Detail) -> str:
    return detail if isinstance(detail, str) else detail()


class _Evaluation:
    """State of one evaluation: the reasons found, the window boundaries seen, the trace."""

    __slots__ = ("at", "boundaries", "candidates", "cfg", "denied", "facts", "reasons", "trace")

    def __init__(
        self, facts: FactSet, at: datetime, cfg: RulesConfig, trace: list[Check] | None
    ) -> None:
        self.facts = facts
        self.at = at
        self.cfg = cfg
        self.trace = trace
        self.reasons: list[Reason] = []
        self.boundaries: list[datetime] = []
        self.candidates: list[Grant] = []
        self.denied: list[tuple[str, Reason]] = []

    def require(
        self,
        condition: str,
        held: bool,
        source: str,
        detail: Detail,
        reason: Reason,
        window: Window | None = None,
    ) -> None:
        """A condition on the whole credential: when it fails, the credential is disabled."""
        if not held and reason not in self.reasons:
            self.reasons.append(reason)
        if self.trace is not None:
            self.trace.append(
                Check(condition, held, source, _text(detail), None if held else reason, window)
            )

    def note(
        self,
        condition: str,
        held: bool,
        source: str,
        detail: Detail = "",
        reason: Reason | None = None,
        window: Window | None = None,
        space_id: str | None = None,
    ) -> None:
        """A condition on one grant: when it fails, only that grant is withheld."""
        if not held and reason is not None and space_id is not None:
            self.denied.append((space_id, reason))
        if self.trace is not None:
            self.trace.append(
                Check(condition, held, source, _text(detail), None if held else reason, window)
            )

    def window(self, w: Window) -> Window:
        """Remember a contributing window's future boundaries (when the result may change)."""
        if w.start is not None and w.start > self.at:
            self.boundaries.append(w.start)
        if w.end is not None and w.end > self.at:
            self.boundaries.append(w.end)
        return w

    def has_locks_for(self, space: Space, key: bool) -> bool:
        """Keys open cylinders, tags and visitor cards open doors: a space without locks of
        the credential's kind grants it nothing."""
        fits = bool(space.cylinders) if key else bool(space.doors)
        self.note(
            f"space {space.id} has {'cylinders' if key else 'doors'}",
            fits,
            f"space {space.id}",
            "",
            Reason.LOCK_KIND_MISMATCH,
            space_id=space.id,
        )
        return fits

    # ------------------------------------------------------------------ visitor cards

    def visitor(self, number: str) -> tuple[str | None, Window]:
        card = self.facts.visitor_cards.get(number)
        src = f"visitor card {number}"
        self.require(
            "visitor card registered", card is not None, src, "", Reason.CREDENTIAL_UNKNOWN
        )
        if card is None:
            return None, Window()
        self.require(
            "sponsor registered",
            card.sponsor_employment_id in self.facts.employments,
            f"employment {card.sponsor_employment_id}",
            "the card's contact person",
            Reason.SPONSOR_MISSING,
        )
        w = self.window(Window(card.valid_from, card.valid_until))
        self.require(
            "visitor card within its validity",
            not w.ended_by(self.at),
            src,
            lambda: f"valid until {card.valid_until.isoformat()}",
            Reason.VISITOR_EXPIRED,
            w,
        )
        for s in card.space_ids:
            space = self.facts.spaces.get(s)
            self.note(
                f"space {s} registered",
                space is not None,
                f"space {s}",
                "",
                Reason.SPACE_UNKNOWN,
                space_id=s,
            )
            if space is not None and self.has_locks_for(space, key=False):
                self.candidates.append(Grant(s, w, None, src))
        return f"visitor:{number}", w

    # ------------------------------------------------------------------ keys and tags

    def employee(self, cred: Credential) -> tuple[str | None, Window]:
        number = cred.number
        src = f"credential {number}"
        linked = f"employment {cred.employment_id}"
        if cred.state is CredentialState.DELIVERED:
            self.require(
                "handed out to an employment",
                False,
                src,
                "delivered, inactive",
                Reason.NOT_HANDED_OUT,
            )
        elif cred.state in (CredentialState.HANDED_OUT, CredentialState.IN_SERVICE):
            self.require("handed out to an employment", True, src, linked, Reason.NOT_HANDED_OUT)
            signed = cred.state is CredentialState.IN_SERVICE
            self.require(
                "handout receipt signed",
                signed,
                f"receipt of {number}",
                "signed" if signed else "not signed",
                Reason.RECEIPT_UNSIGNED,
            )
        if cred.kind is CredentialKind.TAG:
            approved = cred.hr_approved_at is not None
            self.require(
                "HR approval of the employee card",
                approved,
                src,
                lambda: cred.hr_approved_at.isoformat() if cred.hr_approved_at else "not approved",
                Reason.HR_APPROVAL_MISSING,
            )
        if cred.employment_id is None:
            return None, Window()
        emp = self.facts.employments.get(cred.employment_id)
        self.require("employment registered", emp is not None, linked, "", Reason.NO_EMPLOYMENT)
        if emp is None:
            return cred.employment_id, Window()
        base = self._holder_window(emp)
        self._collect_grants(emp, cred.kind is CredentialKind.KEY)
        return emp.id, base

    def _holder_window(self, emp: Employment) -> Window:
        esrc = f"employment {emp.id}"
        id06 = emp.id06
        card = f"card {id06.card_number}: {id06.status.value}"
        self.require(
            "ID06 card not blocked",
            id06.status is not Id06Status.BLOCKED,
            esrc,
            card,
            Reason.ID06_BLOCKED,
        )
        self.require(
            "ID06 card not terminated",
            id06.status is not Id06Status.TERMINATED,
            esrc,
            card,
            Reason.ID06_TERMINATED,
        )
        id06_w = self.window(Window(None, self.cfg.day_end(id06.valid_until)))
        self.require(
            "ID06 card valid",
            not id06_w.ended_by(self.at),
            esrc,
            lambda: f"valid until {id06.valid_until.isoformat()}",
            Reason.ID06_EXPIRED,
            id06_w,
        )
        agreement = _agreement_window(self.facts, emp.org_number, self.at, self.cfg)
        asrc = f"key grant agreement of {emp.org_number}"
        if agreement is None:
            self.require(
                "key grant agreement in force", False, asrc, "none registered", Reason.NO_AGREEMENT
            )
            return id06_w
        self.window(agreement)
        if agreement.ended_by(self.at):
            self.require(
                "key grant agreement in force",
                False,
                asrc,
                "ended",
                Reason.AGREEMENT_ENDED,
                agreement,
            )
        else:
            # An agreement that starts later only delays the grants; it is not a failure.
            self.require(
                "key grant agreement in force",
                True,
                asrc,
                "in force" if agreement.contains(self.at) else "starts later",
                Reason.AGREEMENT_NOT_STARTED,
                agreement,
            )
        return id06_w.intersect(agreement)

    def _collect_grants(self, emp: Employment, key: bool) -> None:
        facts, cfg = self.facts, self.cfg
        entries = facts.entries_by_employment.get(emp.id)
        if not entries:
            self.note(
                "named in an approved access application",
                False,
                f"employment {emp.id}",
                "no approved revision names it",
            )
            return
        competences = facts.competences.get(emp.person_id, {})
        for assignment_id in sorted(entries):
            entry = entries[assignment_id]
            app = facts.latest_approved[assignment_id]
            appsrc = f"application {assignment_id} rev {app.revision}"
            ew = Window(cfg.day_start(entry.valid_from), cfg.day_end(entry.valid_until))
            self.note(
                "named in an approved access application",
                True,
                appsrc,
                _joined("spaces", entry.space_ids),
                window=ew,
            )
            assignment = facts.assignments.get(assignment_id)
            if assignment is None:
                self.note(
                    "assignment registered",
                    False,
                    f"assignment {assignment_id}",
                    "",
                    Reason.ASSIGNMENT_UNKNOWN,
                )
                self.denied.extend((sp, Reason.ASSIGNMENT_UNKNOWN) for sp in entry.space_ids)
                continue
            aw = Window(cfg.day_start(assignment.starts_on), cfg.day_end(assignment.ends_on))
            ew = ew.intersect(aw)
            self.note(
                "assignment period overlaps the entry",
                not ew.is_empty(),
                f"assignment {assignment_id}",
                "",
                Reason.ASSIGNMENT_ENDED,
                aw,
            )
            for space_id in entry.space_ids:
                w = self._space_window(space_id, emp.person_id, competences, ew, key)
                if w is not None:
                    self.candidates.append(Grant(space_id, w, entry.schedule, appsrc))

    def _space_window(
        self, space_id: str, person_id: str, competences: dict[str, Any], w: Window, key: bool
    ) -> Window | None:
        space = self.facts.spaces.get(space_id)
        self.note(
            f"space {space_id} registered",
            space is not None,
            f"space {space_id}",
            "",
            Reason.SPACE_UNKNOWN,
            space_id=space_id,
        )
        if space is None or not self.has_locks_for(space, key):
            return None
        for code in space.required_competences:
            comp = competences.get(code)
            csrc = f"competence {code} of person {person_id}"
            cond = f"competence {code} required by space {space_id}"
            if comp is None:
                self.note(
                    cond, False, csrc, "not held", Reason.COMPETENCE_MISSING, space_id=space_id
                )
                return None
            cw = self.window(Window(None, self.cfg.day_end(comp.valid_until)))
            if cw.ended_by(self.at):
                self.note(
                    cond,
                    False,
                    csrc,
                    _dated("expired", comp.valid_until),
                    Reason.COMPETENCE_EXPIRED,
                    cw,
                    space_id=space_id,
                )
                return None
            self.note(
                cond,
                True,
                csrc,
                _dated("valid until", comp.valid_until),
                window=cw,
            )
            w = w.intersect(cw)
        return w


def evaluate(
    facts: FactSet,
    number: str,
    at: datetime,
    cfg: RulesConfig,
    *,
    trace: list[Check] | None = None,
) -> DesiredCredential | None:
    """Derive the desired state of credential ``number`` at instant ``at`` (aware, UTC).

    Returns ``None`` when no such credential exists. With ``trace`` given, every check made
    is appended to it as a :class:`Check`, in the order made.
    """
    cred = facts.credentials.get(number)
    if cred is None:
        if trace is not None:
            trace.append(
                Check(
                    "credential registered",
                    False,
                    f"credential {number}",
                    "",
                    Reason.CREDENTIAL_UNKNOWN,
                )
            )
        return None
    ev = _Evaluation(facts, at, cfg, trace)
    ev.require(
        "credential not revoked",
        cred.state not in TERMINAL_STATES,
        f"credential {number}",
        f"state {cred.state.value}",
        Reason.CREDENTIAL_REVOKED,
    )
    if cred.kind is CredentialKind.VISITOR_CARD:
        holder, base = ev.visitor(number)
    else:
        holder, base = ev.employee(cred)

    grants: list[Grant] = []
    lapsed = False
    for g in ev.candidates:
        w = ev.window(g.window.intersect(base))
        if w.is_empty() or w.ended_by(at):
            lapsed = True
            continue
        grants.append(Grant(g.space_id, w, g.schedule, g.source))

    enabled = not ev.reasons
    merged = _merge(grants) if enabled else ()
    active = enabled and any(g.window.contains(at) for g in merged)
    reasons = ev.reasons
    if enabled and not active:
        if merged:
            reasons.append(
                Reason.VISITOR_NOT_STARTED
                if cred.kind is CredentialKind.VISITOR_CARD
                else Reason.APPLICATION_NOT_STARTED
            )
        else:
            for _, r in ev.denied:
                if r not in reasons:
                    reasons.append(r)
            if lapsed or not reasons:
                reasons.append(
                    Reason.APPLICATION_ENDED
                    if lapsed or ev.candidates
                    else Reason.NO_APPROVED_APPLICATION
                )
    revalidation: int | None = None
    if cred.kind is CredentialKind.KEY and merged:
        days = [d for g in merged if (d := facts.spaces[g.space_id].revalidation_days) is not None]
        revalidation = min(days) if days else cfg.default_revalidation_days
    window: Window | None = None
    if merged:
        starts = [g.window.start for g in merged]
        ends = [g.window.end for g in merged]
        window = Window(
            None if None in starts else min(s for s in starts if s is not None),
            None if None in ends else max(e for e in ends if e is not None),
        )
    return DesiredCredential(
        number=number,
        kind=cred.kind,
        enabled=enabled,
        active=active,
        reasons=tuple(reasons),
        grants=merged,
        denied=tuple(ev.denied),
        window=window,
        revalidation_days=revalidation,
        revision=_revision(number, cred.kind, enabled, merged, revalidation, facts),
        computed_at=at,
        next_change_at=min(ev.boundaries) if ev.boundaries else None,
        holder=holder,
    )

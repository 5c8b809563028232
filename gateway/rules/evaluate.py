"""Derivation of one credential's desired state from the facts, with an optional trace.

This is the single place where the policy lives. :func:`evaluate` checks every condition
the domain sets (DOMAIN.md §1, §2), intersects every contributing window and returns a
:class:`DesiredCredential`. With ``trace`` set, it also records every check it made, the fact
the check came from and whether it held: that trace is what ``explain`` shows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from operator import attrgetter
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

    def sort_key(self) -> tuple[str, bool, datetime, bool, datetime, str]:
        """Space, then start (unbounded first), end (unbounded last), schedule."""
        w = self.window
        return (
            self.space_id,
            w.start is not None,
            w.start or _EPOCH,
            w.end is None,
            w.end or _EPOCH,
            schedule_text(self.schedule),
        )


_new = object.__new__
_SET_SPACE = vars(Grant)["space_id"].__set__
_SET_WINDOW = vars(Grant)["window"].__set__
_SET_SCHEDULE = vars(Grant)["schedule"].__set__
_SET_SOURCE = vars(Grant)["source"].__set__


def _grant(space_id: str, window: Window, schedule: WeeklySchedule | None, source: str) -> Grant:
    """``Grant(space_id, window, schedule, source)``, its slots set directly (the generated
    ``__init__`` of a frozen dataclass sets each through ``object.__setattr__``, about
    twice the cost; derivation makes several grants per credential)."""
    g: Grant = _new(Grant)
    _SET_SPACE(g, space_id)
    _SET_WINDOW(g, window)
    _SET_SCHEDULE(g, schedule)
    _SET_SOURCE(g, source)
    return g


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SCHEDULE_TEXT: dict[WeeklySchedule, str] = {}
_SCHEDULE_TEXT_BY_ID: dict[int, tuple[WeeklySchedule, str]] = {}


def schedule_text(schedule: WeeklySchedule | None) -> str:
    """A canonical, process-independent text of a schedule (cached: schedules repeat, and
    the same schedule object is met once per grant of an entry, so it is first looked up by
    identity, which spares hashing the model)."""
    if schedule is None:
        return ""
    known = _SCHEDULE_TEXT_BY_ID.get(id(schedule))
    if known is not None and known[0] is schedule:
        return known[1]
    text = _SCHEDULE_TEXT.get(schedule)
    if text is None:
        if len(_SCHEDULE_TEXT) > 10000:
            _SCHEDULE_TEXT.clear()
        text = repr(schedule.key())
        _SCHEDULE_TEXT[schedule] = text
    if len(_SCHEDULE_TEXT_BY_ID) > 10000:
        _SCHEDULE_TEXT_BY_ID.clear()
    _SCHEDULE_TEXT_BY_ID[id(schedule)] = (schedule, text)
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
    parts: list[str] = [number, _KIND_TEXT[id(kind)], "1" if enabled else "0", str(revalidation)]
    digests = facts.space_digests
    for g in grants:
        space_id = g.space_id
        parts += (
            space_id,
            digests.get(space_id, ""),
            _window_text(g.window),
            schedule_text(g.schedule),
        )
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


_KIND_TEXT = {id(kind): kind.value for kind in CredentialKind}
"""A kind's value by the member's identity (members are singletons; ``.value`` is a
descriptor call)."""

_BY_ID_LIMIT = 20_000
"""Entries of a cache by identity before it is emptied: the shared windows a site's
derivations meet are a few hundred; a visitor card's window is a new object in each
evaluation, so such entries come and go."""

_WINDOW_TEXT: dict[Window, str] = {}
_WINDOW_TEXT_BY_ID: dict[int, tuple[Window, str]] = {}


def _window_text(w: Window) -> str:
    """``start|end`` of a window as the revision spells it (POSIX timestamps, ``-`` when
    unbounded); cached, windows repeat (and are shared objects: looked up by identity
    first, which spares hashing the window)."""
    known = _WINDOW_TEXT_BY_ID.get(id(w))
    if known is not None and known[0] is w:
        return known[1]
    text = _WINDOW_TEXT.get(w)
    if text is None:
        if len(_WINDOW_TEXT) > 100_000:
            _WINDOW_TEXT.clear()
        text = _WINDOW_TEXT[w] = (
            f"{w.start.timestamp() if w.start else '-'}|{w.end.timestamp() if w.end else '-'}"
        )
    if len(_WINDOW_TEXT_BY_ID) > _BY_ID_LIMIT:
        _WINDOW_TEXT_BY_ID.clear()
    _WINDOW_TEXT_BY_ID[id(w)] = (w, text)
    return text


_WINDOWS: dict[Window, Window] = {}


def _shared(w: Window) -> Window:
    """One object per distinct window: the grants of a site repeat a few windows many
    times, so the derived states share them instead of each holding its own."""
    known = _WINDOWS.get(w)
    if known is None:
        if len(_WINDOWS) > 100_000:
            _WINDOWS.clear()
        known = _WINDOWS[w] = w
    return known


_MEETS: dict[tuple[int, int], tuple[Window, Window, Window]] = {}


def _meet(a: Window, b: Window) -> Window:
    """``a.intersect(b)``, remembered by the identity of the two windows: the windows met
    in a derivation are shared objects that repeat (an entry's days and its assignment's,
    a holder's ID06 card and agreement), so most intersections are found, not computed.
    When ``b`` does not cut ``a`` the answer is ``a`` itself (the very value
    ``intersect`` gives: the same start and end). The entry holds both windows, so their
    ids cannot be reused while it is kept."""
    key = (id(a), id(b))
    hit = _MEETS.get(key)
    if hit is not None and hit[0] is a and hit[1] is b:
        return hit[2]
    bs, be = b.start, b.end
    if (bs is None or (a.start is not None and a.start >= bs)) and (
        be is None or (a.end is not None and a.end <= be)
    ):
        w = a
    else:
        w = _shared(a.intersect(b))
    if len(_MEETS) > _BY_ID_LIMIT:
        _MEETS.clear()
    _MEETS[key] = (a, b, w)
    return w


_space_id = attrgetter("space_id")


def _merge(grants: list[Grant]) -> tuple[Grant, ...]:
    """Canonical form: per (space, schedule), overlapping or touching windows merged.

    Sorted by space first: when no space repeats (the usual case) that is already the order
    of :meth:`Grant.sort_key` and nothing merges. Otherwise the grants of one space are then
    sorted by the whole key (the sort is stable, so ties keep their order as before)."""
    grants.sort(key=_space_id)
    previous = None
    for g in grants:
        if g.space_id == previous:
            break
        previous = g.space_id
    else:
        return tuple(grants)
    grants.sort(key=Grant.sort_key)
    out: list[Grant] = []
    for g in grants:
        if out:
            last = out[-1]
            same = last.space_id == g.space_id and (
                last.schedule is g.schedule or last.schedule == g.schedule
            )
            touches = last.window.end is None or (
                g.window.start is not None and g.window.start <= last.window.end
            )
            if same and touches:
                end = (
                    None
                    if last.window.end is None or g.window.end is None
                    else max(last.window.end, g.window.end)
                )
                out[-1] = Grant(
                    g.space_id, _shared(Window(last.window.start, end)), g.schedule, last.source
                )
                continue
        out.append(g)
    return tuple(out)


_TERMINAL_IDS = frozenset(id(state) for state in TERMINAL_STATES)
"""``TERMINAL_STATES`` by identity (members are singletons; hashing one calls Python)."""

_NO_COMPETENCES: dict[str, Any] = {}
"""What a person without competences holds (read only)."""

Detail = str | Callable[[], str]
"""A check's detail; a callable is only called when a trace is being recorded."""


def _dated(prefix: str, day: date) -> Callable[[], str]:
    return lambda: f"{prefix} {day.isoformat()}"


def _joined(prefix: str, items: tuple[str, ...]) -> Callable[[], str]:
    return lambda: f"{prefix} {', '.join(items)}"


def _text(detail: Detail) -> str:
    return detail if isinstance(detail, str) else detail()


_SOURCES: dict[tuple[str, int], str] = {}


def _application_source(assignment_id: str, revision: int) -> str:
    """``application A rev R``, one string shared by every grant from that revision."""
    key = (assignment_id, revision)
    text = _SOURCES.get(key)
    if text is None:
        if len(_SOURCES) > 100_000:
            _SOURCES.clear()
        text = _SOURCES[key] = f"application {assignment_id} rev {revision}"
    return text


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
        if fits and self.trace is None:
            return True
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
        traced = self.trace is not None
        src = f"credential {number}" if traced else ""
        linked = f"employment {cred.employment_id}" if traced else ""
        if cred.state is CredentialState.DELIVERED:
            self.require(
                "handed out to an employment",
                False,
                src,
                "delivered, inactive",
                Reason.NOT_HANDED_OUT,
            )
        elif cred.state in (CredentialState.HANDED_OUT, CredentialState.IN_SERVICE):
            # A condition that holds is only recorded when tracing (require() does nothing
            # else with it): the calls are spared otherwise, here and below.
            if traced:
                self.require(
                    "handed out to an employment", True, src, linked, Reason.NOT_HANDED_OUT
                )
            signed = cred.state is CredentialState.IN_SERVICE
            if traced or not signed:
                self.require(
                    "handout receipt signed",
                    signed,
                    f"receipt of {number}" if traced else "",
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
        if traced or emp is None:
            self.require("employment registered", emp is not None, linked, "", Reason.NO_EMPLOYMENT)
        if emp is None:
            return cred.employment_id, Window()
        base = self._holder_window(emp)
        self._collect_grants(emp, cred.kind is CredentialKind.KEY)
        return emp.id, base

    def _holder_window(self, emp: Employment) -> Window:
        traced = self.trace is not None
        esrc = f"employment {emp.id}" if traced else ""
        id06 = emp.id06
        card = f"card {id06.card_number}: {id06.status.value}" if traced else ""
        status = id06.status
        if traced or status is Id06Status.BLOCKED:
            self.require(
                "ID06 card not blocked",
                status is not Id06Status.BLOCKED,
                esrc,
                card,
                Reason.ID06_BLOCKED,
            )
        if traced or status is Id06Status.TERMINATED:
            self.require(
                "ID06 card not terminated",
                status is not Id06Status.TERMINATED,
                esrc,
                card,
                Reason.ID06_TERMINATED,
            )
        id06_w = self.window(self.cfg.until_window(id06.valid_until))
        valid = not id06_w.ended_by(self.at)
        if traced or not valid:
            self.require(
                "ID06 card valid",
                valid,
                esrc,
                lambda: f"valid until {id06.valid_until.isoformat()}",
                Reason.ID06_EXPIRED,
                id06_w,
            )
        agreement = self.facts.cached_agreement_window(
            emp.org_number, self.at, self.cfg, _agreement_window
        )
        asrc = f"key grant agreement of {emp.org_number}" if traced else ""
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
        elif traced:
            # An agreement that starts later only delays the grants; it is not a failure.
            self.require(
                "key grant agreement in force",
                True,
                asrc,
                "in force" if agreement.contains(self.at) else "starts later",
                Reason.AGREEMENT_NOT_STARTED,
                agreement,
            )
        return _meet(id06_w, agreement)

    def _collect_grants(self, emp: Employment, key: bool) -> None:
        facts, cfg = self.facts, self.cfg
        entries = facts.entries_by_employment.sorted_items(emp.id)
        if not entries:
            self.note(
                "named in an approved access application",
                False,
                f"employment {emp.id}",
                "no approved revision names it",
            )
            return
        competences = facts.competences.get(emp.person_id, _NO_COMPETENCES)
        traced = self.trace is not None
        for assignment_id, entry in entries:
            app = facts.latest_approved[assignment_id]
            appsrc = _application_source(assignment_id, app.revision)
            ew = cfg.days_window(entry.valid_from, entry.valid_until)
            if traced:
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
            aw = cfg.days_window(assignment.starts_on, assignment.ends_on)
            ew = _meet(ew, aw)
            if traced:
                self.note(
                    "assignment period overlaps the entry",
                    not ew.is_empty(),
                    f"assignment {assignment_id}",
                    "",
                    Reason.ASSIGNMENT_ENDED,
                    aw,
                )
            spaces, candidates, schedule = facts.spaces, self.candidates, entry.schedule
            for space_id in entry.space_ids:
                space = spaces.get(space_id)
                if (
                    not traced
                    and space is not None
                    and not space.required_competences
                    and (space.cylinders if key else space.doors)
                ):
                    # Registered, with locks of the kind, requiring nothing: nothing to note
                    # and the entry's window as it is (what _space_window gives then).
                    candidates.append(_grant(space_id, ew, schedule, appsrc))
                    continue
                w = self._space_window(space_id, emp.person_id, competences, ew, key)
                if w is not None:
                    candidates.append(_grant(space_id, w, schedule, appsrc))

    def _space_window(
        self, space_id: str, person_id: str, competences: dict[str, Any], w: Window, key: bool
    ) -> Window | None:
        space = self.facts.spaces.get(space_id)
        traced = self.trace is not None
        if space is None or traced:
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
            csrc = f"competence {code} of person {person_id}" if traced else ""
            cond = f"competence {code} required by space {space_id}" if traced else ""
            if comp is None:
                self.note(
                    cond, False, csrc, "not held", Reason.COMPETENCE_MISSING, space_id=space_id
                )
                return None
            cw = self.window(self.cfg.until_window(comp.valid_until))
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
            if traced:
                self.note(
                    cond,
                    True,
                    csrc,
                    _dated("valid until", comp.valid_until),
                    window=cw,
                )
            w = _meet(w, cw)
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
    in_use = id(cred.state) not in _TERMINAL_IDS
    if trace is not None or not in_use:
        ev.require(
            "credential not revoked",
            in_use,
            f"credential {number}" if trace is not None else "",
            f"state {cred.state.value}" if trace is not None else "",
            Reason.CREDENTIAL_REVOKED,
        )
    if cred.kind is CredentialKind.VISITOR_CARD:
        holder, base = ev.visitor(number)
    else:
        holder, base = ev.employee(cred)
    grants, lapsed = _clip(ev, base)
    enabled = not ev.reasons
    merged = _merge(grants) if enabled else ()
    active = enabled and _any_contains(merged, at)
    reasons = _reasons(ev, cred.kind, enabled, active, merged, lapsed)
    revalidation = _revalidation_days(facts, cfg, cred.kind, merged)
    return _desired(
        number,
        cred.kind,
        enabled,
        active,
        tuple(reasons),
        merged,
        tuple(ev.denied),
        _overall_window(merged),
        revalidation,
        _revision(number, cred.kind, enabled, merged, revalidation, facts),
        at,
        min(ev.boundaries) if ev.boundaries else None,
        holder,
    )


_DESIRED_SETTERS = tuple(vars(DesiredCredential)[f.name].__set__ for f in fields(DesiredCredential))


def _desired(*values: Any) -> DesiredCredential:
    """``DesiredCredential(*values)`` (every field, in order), its slots set directly."""
    d: DesiredCredential = _new(DesiredCredential)
    for setter, value in zip(_DESIRED_SETTERS, values, strict=True):
        setter(d, value)
    return d


def _any_contains(grants: tuple[Grant, ...], at: datetime) -> bool:
    """Whether some grant's window contains ``at`` (``Window.contains``, spelt out)."""
    for g in grants:
        w = g.window
        start, end = w.start, w.end
        if (start is None or start <= at) and (end is None or at < end):
            return True
    return False


def _clip(ev: _Evaluation, base: Window) -> tuple[list[Grant], bool]:
    """The candidate grants clipped by the holder's window (ID06 card, agreement, visitor
    card), without those whose window is empty or has ended; and whether any was dropped
    for that (the access *lapsed*)."""
    grants: list[Grant] = []
    lapsed = False
    at = ev.at
    boundaries = ev.boundaries
    met_in: Window | None = None
    met_out = base
    for g in ev.candidates:
        if g.window is not met_in:  # the grants of one entry share its window
            met_in = g.window
            met_out = _meet(met_in, base)
        w = met_out
        start, end = w.start, w.end
        # ev.window(w), is_empty() and ended_by(at), spelt out: this runs for every grant.
        if start is not None and start > at:
            boundaries.append(start)
        if end is not None:
            if end > at:
                boundaries.append(end)
            if end <= at or (start is not None and start >= end):
                lapsed = True
                continue
        # The base does not cut the candidate's window (the usual case): the grant is it.
        grants.append(g if w is g.window else _grant(g.space_id, w, g.schedule, g.source))
    return grants, lapsed


def _reasons(
    ev: _Evaluation,
    kind: CredentialKind,
    enabled: bool,
    active: bool,
    merged: tuple[Grant, ...],
    lapsed: bool,
) -> list[Reason]:
    """Why the credential is not active: the failed conditions, or, when enabled, that its
    access has not started yet, was withheld space by space, or has ended."""
    reasons = ev.reasons
    if enabled and not active:
        if merged:
            reasons.append(
                Reason.VISITOR_NOT_STARTED
                if kind is CredentialKind.VISITOR_CARD
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
    return reasons


def _revalidation_days(
    facts: FactSet, cfg: RulesConfig, kind: CredentialKind, merged: tuple[Grant, ...]
) -> int | None:
    """A key's revalidation interval: the shortest its spaces set, else the default."""
    if kind is not CredentialKind.KEY or not merged:
        return None
    days = [d for g in merged if (d := facts.spaces[g.space_id].revalidation_days) is not None]
    return min(days) if days else cfg.default_revalidation_days


def _overall_window(merged: tuple[Grant, ...]) -> Window | None:
    """From the earliest grant's start to the latest grant's end (unbounded if any is)."""
    if not merged:
        return None
    first = merged[0].window
    for g in merged:
        if g.window is not first:
            break
    else:
        return first
    starts = [g.window.start for g in merged]
    ends = [g.window.end for g in merged]
    return _shared(
        Window(
            None if None in starts else min(s for s in starts if s is not None),
            None if None in ends else max(e for e in ends if e is not None),
        )
    )

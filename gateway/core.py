"""The core: applies commands to the store and the rules engine in one transaction each.

Every accepted change goes through :meth:`Core.submit`:

1. the write transaction starts (writers are serialised by the store);
2. the engine catches up with changes other processes committed (the fact journal);
3. a request seen before (by its request id) returns its stored response, changing nothing,
   when it is the same request again (same name, same validated fields: a replay); a request
   that reuses the id of another one is refused with ``CONFLICT`` on ``request_id``, logged
   and reported to the listeners (the audit log), and nothing is recorded;
4. the handler checks the command against the current facts and names the facts to write;
   the response's data lists the credentials whose desired state changed (``credentials``);
5. the facts, the journal entries, the derived desired states and whatever the listeners add
   (outbox messages, audit entries) are written, and the response is stored in the inbox;
6. commit. Only then is the response handed back, so nothing is acknowledged before it is
   stored. If anything fails after the engine changed, the engine is rebuilt from the store.

The core is synchronous and not thread-safe: the service runs it on one worker thread.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError
from sqlalchemy.orm import Session

from gateway.commands import CommandContext, handle
from gateway.commands.model import Command
from gateway.domain.errors import DomainError
from gateway.domain.facts import FACT_TYPES, Fact, fact_key
from gateway.domain.timeutil import utcnow
from gateway.rules.engine import Changes, RulesEngine, gc_paused
from gateway.rules.hardware import KeyExposure
from gateway.rules.parameters import RulesConfig
from gateway.rules.reasons import Reason
from gateway.store import desired as desired_store
from gateway.store import fact_repository as fact_store
from gateway.store import inbox as inbox_store
from gateway.store import journal
from gateway.store.database import Database

log = logging.getLogger(__name__)

T = TypeVar("T")

FACT_TYPES_BY_NAME: dict[str, type[Fact]] = {t.__name__: t for t in FACT_TYPES}


@dataclass(frozen=True)
class Submission:
    """A command with the identity of its request: who sent it, and its request id (for
    idempotency; ``None`` for commands that are not requests, such as CLI actions)."""

    command: Command
    operator: str
    request_id: str | None = None
    source: str = "cli"


@dataclass
class Outcome:
    """The response to one submission: ``{request_id, status, data, error}``."""

    request_id: str | None
    status: str
    data: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    duplicate: bool = False
    changes: Changes = field(default_factory=Changes)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def response(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": self.status,
            "data": self.data,
            "error": self.error,
        }

    @classmethod
    def failure(
        cls,
        request_id: str | None,
        code: str,
        message: str,
        field_name: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> Outcome:
        """A refusal. ``errors`` lists every error found (``{field, message}``); by default
        the one given by ``message`` and ``field_name``."""
        return cls(request_id, "error", error=error_body(code, message, field_name, errors))


@dataclass
class _Pending:
    """What one transaction accumulates to write at its end, in few statements."""

    journal: list[tuple[str, tuple[str, ...], bool]] = field(default_factory=list)
    inbox: list[inbox_store.InboxEntry] = field(default_factory=list)
    answered: dict[str, tuple[Outcome, inbox_store.InboxEntry]] = field(default_factory=dict)
    seen: dict[str, inbox_store.InboxEntry] = field(default_factory=dict)
    states: dict[str, Any] = field(default_factory=dict)
    controllers: set[str] = field(default_factory=set)
    cylinders: set[str] = field(default_factory=set)

    def add(self, changes: Changes) -> None:
        self.states.update(changes.credentials)
        self.controllers |= changes.controllers
        self.cylinders |= changes.cylinders

    def answer(self, sub: Submission, outcome: Outcome, at: datetime, digest: str | None) -> None:
        """Remember the response of a request (stored in the inbox at the end)."""
        if sub.request_id is None:
            return
        entry = inbox_store.InboxEntry(
            sub.request_id, sub.command.name, outcome.response(), at, digest
        )
        self.answered[sub.request_id] = (outcome, entry)
        self.inbox.append(entry)


def changed_credentials(changes: Changes) -> list[str]:
    """The credentials whose desired state a change altered, in number order: every response
    lists them (``data.credentials``) unless its handler says otherwise."""
    return sorted(changes.credentials, key=lambda n: (len(n), n))


def request_digest(command: Command) -> str:
    """The digest the inbox keeps of a request: its name and validated fields."""
    return inbox_store.digest(command.name, command.model_dump(mode="json"))


MAX_ERRORS = 20
"""At most this many errors are listed in a refusal's ``errors``."""


def error_body(
    code: str, message: str, field_name: str | None, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The ``error`` object of a response: the first error's ``code``, ``message`` and
    ``field``, and ``errors``, every error found (at most :data:`MAX_ERRORS`)."""
    listed = errors if errors is not None else [{"field": field_name, "message": message}]
    return {"code": code, "message": message, "field": field_name, "errors": listed[:MAX_ERRORS]}


def field_errors(exc: DomainError | ValidationError) -> list[dict[str, Any]]:
    """Every error of a validation or domain error as ``{field, message}`` (dotted field
    path or null), at most :data:`MAX_ERRORS`."""
    if isinstance(exc, DomainError):
        return [{"field": exc.field, "message": exc.message}]
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or None, "message": e["msg"]}
        for e in exc.errors(include_url=False)[:MAX_ERRORS]
    ]


def error_of(exc: DomainError | ValidationError) -> tuple[str, str, str | None]:
    """(code, message, field) of a validation or domain error: its first error, and how many
    more there are."""
    if isinstance(exc, DomainError):
        return exc.code, exc.message, exc.field
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or None
    extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return "INVALID", f"{first['msg']}{extra}", loc


class ChangeListener(Protocol):
    """Called inside the transaction of every change, after the derived states are written.

    ``ctx`` is the command's context, or ``None`` for changes caused by time passing or by
    another process. A refused command is reported too, with ``ctx.refusal`` set and empty
    ``changes``. Listeners add rows (outbox messages, audit entries, sync jobs) to
    ``session``; raising aborts the whole transaction."""

    def __call__(
        self, session: Session, core: Core, ctx: CommandContext | None, changes: Changes
    ) -> None: ...


class AuthorizationHook(Protocol):
    """Decides whether ``operator`` may run ``command``; raises a :class:`DomainError` with
    code ``FORBIDDEN`` (naming the operator, the role and the action) when not."""

    def __call__(self, session: Session, operator: str, command: Command) -> None: ...


Loader = Callable[[Session, "Core"], None]
"""Restores, at :meth:`Core.load`, engine state that is not a fact."""


_AT_FLUSH = "lockgate.core.at-flush"


class Core:
    """Store + rules engine + listeners; see the module docstring for the flow. Its
    listeners, loaders and authorizer are given at construction and never change; build a
    core with :mod:`gateway.compose`."""

    def __init__(
        self,
        db: Database,
        cfg: RulesConfig | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        listeners: Iterable[ChangeListener] = (),
        loaders: Iterable[Loader] = (),
        authorizer: AuthorizationHook | None = None,
    ) -> None:
        self.db = db
        self.cfg = cfg or RulesConfig()
        self.clock = clock
        self._listeners: tuple[ChangeListener, ...] = tuple(listeners)
        self._loaders: tuple[Loader, ...] = tuple(loaders)
        self._authorizer = authorizer
        self.engine = RulesEngine(self.cfg)
        self.journal_seq = 0
        self.loaded = False

    @property
    def listeners(self) -> tuple[ChangeListener, ...]:
        """Called inside every change's transaction, in this order (fixed at construction)."""
        return self._listeners

    @property
    def loaders(self) -> tuple[Loader, ...]:
        """Called in :meth:`load` after the engine is built from the facts, to restore state
        the engine keeps that is not a fact (what keys physically hold)."""
        return self._loaders

    @property
    def authorizer(self) -> AuthorizationHook | None:
        """Decides whether an operator may run a command; ``None``: anyone may."""
        return self._authorizer

    # ------------------------------------------------------------------ loading

    def load(self) -> Changes:
        """Build the engine from every stored fact and bring the stored derived states in
        line with it (they may lag after a crash or a rules change). Returns what differed."""
        # The cyclic collector stays off for the whole load, not only the engine's build:
        # switched on in between, its first collections scan every object the build made
        # (about 2 s of a start-up at 100k credentials). The loaded site lives as long as the
        # process, so it is frozen out of every later collection, whose pauses would
        # otherwise grow with the size of the site. The first load freezes without
        # collecting (half a second at 100k credentials): nothing else runs yet, and a load
        # leaves next to no cyclic garbage (about 20 objects at 100k credentials). A later
        # load (after a failed transaction) runs beside the other threads, whose garbage of
        # that time is collected before the freeze, as it always was.
        reload = self.loaded
        with gc_paused():
            with self.db.session() as s:
                self.journal_seq = journal.head(s)
                facts = fact_store.iter_all(s)
                self.engine = RulesEngine.build(facts, self.clock(), self.cfg)
                for loader in self._loaders:
                    loader(s, self)
                changes = self._reconcile(s)
                self._persist(s, None, changes)
            self.loaded = True
            if reload:
                gc.collect()
            gc.freeze()
        return changes

    def _reconcile(self, s: Session) -> Changes:
        changes = Changes()
        stored = desired_store.credential_state_summaries(s)
        texts: dict[tuple[Reason, ...], tuple[str, ...]] = {}  # a site repeats a few
        for number, state in self.engine.states.items():
            old = stored.pop(number, None)
            reasons = texts.get(state.reasons)
            if reasons is None:
                reasons = texts[state.reasons] = tuple(r.value for r in state.reasons)
            if old is None or old != (state.revision, state.active, reasons):
                changes.credentials[number] = state
        for number in stored:
            changes.credentials[number] = None
        changes.controllers |= self.engine.controller_ids()
        changes.controllers |= {c.controller_id for c in desired_store.all_controller_states(s)}
        changes.cylinders |= self.engine.blacklisted_cylinders()
        changes.cylinders |= {b.cylinder for b in desired_store.all_blacklists(s)}
        return changes

    def _ensure_loaded(self) -> None:
        if not self.loaded:
            self.load()

    # ------------------------------------------------------------------ commands

    def submit(self, submission: Submission) -> Outcome:
        """Apply one command in its own transaction and return its response."""
        return self.submit_many([submission])[0]

    def execute(self, command: Command, *, operator: str) -> dict[str, Any]:
        """Apply a command and return its data; raise :class:`DomainError` when refused."""
        outcome = self.submit(Submission(command, operator))
        if not outcome.ok:
            assert outcome.error is not None
            raise DomainError(
                outcome.error["message"], field=outcome.error["field"], code=outcome.error["code"]
            )
        return outcome.data

    def submit_many(
        self, submissions: Sequence[Submission], *, atomic: bool = False
    ) -> list[Outcome]:
        """Apply several commands in one transaction (group commit).

        By default a refused command changes nothing and does not affect the others. With
        ``atomic`` the first refusal rolls back the whole batch and raises it as a
        :class:`DomainError` (imports are all or nothing). A database error rolls back the
        whole batch and is raised: the caller may retry the commands one by one."""
        self._ensure_loaded()
        outcomes: list[Outcome] = []
        try:
            with self.db.session() as s:
                self._catch_up(s)
                pending = _Pending()
                ids = [sub.request_id for sub in submissions if sub.request_id is not None]
                if ids:
                    pending.seen = inbox_store.lookup_many(s, ids)
                for sub in submissions:
                    outcome = self._submit_one(s, sub, pending)
                    if atomic and not outcome.ok:
                        assert outcome.error is not None
                        raise DomainError(
                            f"{sub.command.name} #{len(outcomes) + 1}: {outcome.error['message']}",
                            field=outcome.error["field"],
                            code=outcome.error["code"],
                        )
                    outcomes.append(outcome)
                self._flush(s, pending)
        except DomainError:
            self.load()
            raise
        except Exception:
            log.exception("transaction failed; rebuilding the rules engine from the store")
            self.load()
            raise
        return outcomes

    def _submit_one(self, s: Session, sub: Submission, pending: _Pending) -> Outcome:
        now = self.clock()
        digest: str | None = None
        dumped: dict[str, Any] | None = None
        if sub.request_id is not None:
            dumped = sub.command.model_dump(mode="json")
            digest = inbox_store.digest(sub.command.name, dumped)
            earlier = pending.answered.get(sub.request_id)
            seen = earlier[1] if earlier is not None else pending.seen.get(sub.request_id)
            if seen is not None:
                if not seen.matches(sub.command.name, digest):
                    return self._reused(s, sub, seen, now)
                if earlier is not None:
                    return replace(earlier[0], duplicate=True, changes=Changes())
                r = seen.response
                return Outcome(
                    sub.request_id, r["status"], r.get("data") or {}, r.get("error"), duplicate=True
                )
        ctx = self._context(sub, now)
        ctx.dumped = dumped
        try:
            if self._authorizer is not None:
                self._authorizer(s, sub.operator, sub.command)
            handle(ctx, sub.command)
        except DomainError as exc:
            outcome = Outcome.failure(sub.request_id, *error_of(exc))
            ctx.refusal = outcome.error
            for listener in self._listeners:
                listener(s, self, ctx, Changes())
            pending.answer(sub, outcome, now, digest)
            return outcome
        if ctx.puts:
            # Written with the other commands' facts at the end of the batch (_flush), or
            # before anything reads facts from the store meanwhile (the authorizer).
            fact_store.put_many(s, ctx.puts, deferred=True)
        # Deletions too: a deletion written at once would first write every fact deferred
        # so far, splitting the batch's writes into one statement per table per deletion.
        for kind, key in ctx.deletes:
            fact_store.delete_deferred(s, kind, *key)
        changes = self.engine.apply_many(ctx.puts, now)
        for kind, key in ctx.deletes:
            changes.merge(self.engine.remove(kind, key, now))
        pending.journal.extend((type(f).__name__, fact_key(f), False) for f in ctx.puts)
        pending.journal.extend((kind.__name__, key, True) for kind, key in ctx.deletes)
        pending.add(changes)
        ctx.result.setdefault("credentials", changed_credentials(changes))
        for listener in self._listeners:
            listener(s, self, ctx, changes)
        outcome = Outcome(sub.request_id, "ok", ctx.result, None, changes=changes)
        pending.answer(sub, outcome, now, digest)
        return outcome

    def _context(self, sub: Submission, now: datetime) -> CommandContext:
        return CommandContext(
            self.engine.facts,
            now,
            sub.operator,
            self.cfg,
            command=sub.command,
            request_id=sub.request_id,
            source=sub.source,
        )

    def _reused(
        self, s: Session, sub: Submission, seen: inbox_store.InboxEntry, now: datetime
    ) -> Outcome:
        """Refuse a request whose id was recorded for another request. Nothing is recorded
        (the id stays with the earlier request); the refusal is logged and the listeners
        (the audit log) are told."""
        assert sub.request_id is not None
        other = (
            "another request with other content"
            if seen.kind == sub.command.name
            else f"a {seen.kind} request"
        )
        outcome = Outcome.failure(
            sub.request_id,
            "CONFLICT",
            f"request_id {sub.request_id!r} was already used for {other}; a resend must "
            "repeat the request exactly, a new request needs a new request_id",
            "request_id",
        )
        log.warning(
            "%s request %r from %s refused: its request id was used for another %s request "
            "received %s",
            sub.command.name,
            sub.request_id,
            sub.operator,
            seen.kind,
            seen.received_at.isoformat(),
        )
        ctx = self._context(sub, now)
        ctx.refusal = outcome.error
        for listener in self._listeners:
            listener(s, self, ctx, Changes())
        return outcome

    # ------------------------------------------------------------------ time and others

    def tick(self) -> Changes:
        """Recompute what changes by time alone (expiries, starts) and persist it."""
        self._ensure_loaded()
        now = self.clock()
        due = self.engine.next_change_at()
        if due is None or due > now:
            # Nothing due: only another process's commits could matter. Look without taking
            # the write lock, which every tick would otherwise hold for a moment.
            with self.db.session(readonly=True) as r:
                if journal.head(r) == self.journal_seq:
                    return Changes()
        with self.db.session() as s:
            foreign = self._catch_up_changes(s)
            if foreign is None and (due is None or due > now):
                return Changes()
            changes = foreign or Changes()
            changes.merge(self.engine.advance(now))
            self._persist(s, None, changes)
        return changes

    def transaction(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in a write transaction, with the engine caught up first.

        For device workers recording what a device confirmed: they change the engine through
        :meth:`apply_exposure` inside ``fn`` so that the derived changes commit together."""
        self._ensure_loaded()
        try:
            with self.db.session() as s:
                self._catch_up(s)
                return fn(s)
        except Exception:
            log.exception("transaction failed; rebuilding the rules engine from the store")
            self.load()
            raise

    def apply_exposure(self, s: Session, exposure: KeyExposure) -> Changes:
        """Record what a key physically holds and persist the blacklists that changes."""
        changes = self.engine.set_exposure(exposure)
        self.persist(s, changes)
        return changes

    def persist(self, s: Session, changes: Changes) -> None:
        """Store derived changes (and run the listeners) inside the caller's transaction."""
        self._persist(s, None, changes)

    def _catch_up(self, s: Session) -> None:
        changes = self._catch_up_changes(s)
        if changes:
            self._persist(s, None, changes)

    def _catch_up_changes(self, s: Session) -> Changes | None:
        """Apply facts that other processes committed since this engine last looked."""
        head = journal.head(s)
        if head == self.journal_seq:
            return None
        changes = Changes()
        now = self.clock()
        for entry in journal.since(s, self.journal_seq):
            kind = FACT_TYPES_BY_NAME[entry.kind]
            fact = fact_store.get(s, kind, *entry.key)
            if fact is None:
                changes.merge(self.engine.remove(kind, tuple(entry.key), now))
            else:
                changes.merge(self.engine.apply(fact, now))
        self.journal_seq = head
        return changes

    # ------------------------------------------------------------------ derived state

    def _persist(self, s: Session, ctx: CommandContext | None, changes: Changes) -> None:
        """Store derived changes now and tell the listeners."""
        pending = _Pending()
        pending.add(changes)
        for listener in self._listeners:
            listener(s, self, ctx, changes)
        self._flush(s, pending)

    def at_flush(self, s: Session, fn: Callable[[Session], None]) -> None:
        """Have ``fn(s)`` run once when the core writes what the transaction's commands
        accumulated, before its own writes: for a listener that gathers the work of every
        command of a batch and does it together (the sync planner's reads of key images).
        The core writes after the listeners of every batch of commands, of every time tick
        and of every :meth:`persist`, always before the transaction commits."""
        hooks: list[Callable[[Session], None]] | None = s.info.get(_AT_FLUSH)
        if hooks is None:
            hooks = s.info[_AT_FLUSH] = []
        hooks.append(fn)

    def _flush(self, s: Session, pending: _Pending) -> None:
        """Write what a transaction accumulated, in few statements: the journal, the inbox
        records, the derived states of credentials, controllers and cylinders."""
        for fn in s.info.pop(_AT_FLUSH, ()):
            fn(s)
        now = self.clock()
        fact_store.write_deferred(s)
        if pending.journal:
            self.journal_seq = journal.append(s, pending.journal, now)
        if pending.inbox:
            inbox_store.record_many(s, pending.inbox)
        stored = [
            desired_store.StoredCredentialState(
                number=number,
                kind=state.kind.value,
                revision=state.revision,
                active=state.active,
                body=state.as_json(),
                computed_at=state.computed_at,
            )
            for number, state in pending.states.items()
            if state is not None
        ]
        if stored:
            desired_store.put_credential_states(s, stored)
        for number, state in pending.states.items():
            if state is None:
                desired_store.delete_credential_state(s, number)
        for cid in sorted(pending.controllers):
            revision = self.engine.controller_revision(cid)
            held = desired_store.get_controller_state(s, cid)
            if held is None or held.revision != revision:
                desired_store.put_controller_state(
                    s,
                    desired_store.StoredControllerState(
                        controller_id=cid,
                        revision=revision,
                        body={"entries": self.engine.controller_size(cid)},
                        computed_at=now,
                    ),
                )
        for cylinder in sorted(pending.cylinders):
            bl = self.engine.blacklist(cylinder)
            desired_store.put_blacklist(s, cylinder, bl.serials, bl.revision, now)

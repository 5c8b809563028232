"""Outbound messages: what the gateway announces, written to the transactional outbox, and the
relay that publishes the outbox.

:class:`StatePublisher` is a core listener: inside the transaction of every change it appends
the retained state of each changed credential and a ``credential_revoked`` event for each
credential that became revoked. Its ``enqueue_*`` methods are for other parts of the gateway
(the sync engine) to call inside their own transactions. Nothing is published directly: a row
in the outbox exists exactly when the change it announces is committed.

:class:`OutboxRelay` publishes pending rows in id order, in batches, and marks them only once
the broker acknowledged them (QoS 1): a crash or an outage in between republishes them, so
every message is delivered at least once. Marks are written together, at most
``OutboxRelay.MARK_AFTER_S`` after the acknowledgement (or once a batch is waiting): at a low
rate one transaction and one fsync for many messages instead of one per message; a mark lost
in a crash only means the message is published again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import event
from sqlalchemy.orm import Session

from gateway.bridge import payloads as p
from gateway.bridge.client import BrokerSession, OutboundMessage
from gateway.bridge.retry import retrying
from gateway.bridge.topics import TopicMap
from gateway.domain.identifiers import Ident
from gateway.domain.timeutil import utcnow
from gateway.rules.engine import Changes
from gateway.rules.evaluate import DesiredCredential
from gateway.store import desired as desired_store
from gateway.store import outbox

if TYPE_CHECKING:
    from gateway.commands.context import CommandContext
    from gateway.core import Core
    from gateway.runtime import Gateway

log = logging.getLogger(__name__)

T = TypeVar("T")

ConfirmedLookup = Callable[[Session, "Core", str], tuple[str, datetime] | None]
"""``(session, core, credential number) -> (revision, confirmed at)`` of what a device last
confirmed holding, or None."""


ConfirmedPrefetch = Callable[[Session, "Core", Sequence[str]], None]
"""``(session, core, credential numbers)``: read ahead, in few statements, what the
:data:`ConfirmedLookup` will be asked about these credentials in the transaction."""


def no_confirmation(session: Session, core: Core, number: str) -> None:
    """The default :data:`ConfirmedLookup`: nothing is ever confirmed."""
    return None


def no_prefetch(session: Session, core: Core, numbers: Sequence[str]) -> None:
    """The default :data:`ConfirmedPrefetch`: nothing to read ahead."""


_DEVICE_ID = TypeAdapter(Ident)


def to_json(model: p.Payload | p.Event) -> bytes:
    """Compact JSON of an outbound payload."""
    return model.model_dump_json().encode()


def credential_state_payload(
    state: DesiredCredential, confirmed: tuple[str, datetime] | None, now: datetime
) -> p.RetainedCredentialState:
    """The retained state message of one credential. ``pending`` is true until a device
    confirmed the desired revision."""
    window = (
        p.StateWindow(start=state.window.start, end=state.window.end)
        if state.window is not None
        else None
    )
    return p.RetainedCredentialState(
        number=state.number,
        kind=state.kind.value,
        desired=p.DesiredSummary(
            active=state.active,
            enabled=state.enabled,
            revoked=state.revoked,
            reasons=[r.value for r in state.reasons],
            window=window,
            revision=state.revision,
            revalidation_days=state.revalidation_days,
            grants=[
                p.SpaceGrant(
                    space=g.space_id,
                    window=p.StateWindow(start=g.window.start, end=g.window.end),
                    schedule=g.schedule,
                )
                for g in state.grants
            ],
        ),
        confirmed=None
        if confirmed is None
        else p.ConfirmedState(revision=confirmed[0], at=confirmed[1]),
        pending=confirmed is None or confirmed[0] != state.revision,
        updated_at=now,
    )


_STATES = "lockgate.bridge.pending-states"


class StatePublisher:
    """Writes outbound messages to the outbox, inside the caller's transaction.

    Give it to the core as a listener when the core is built (:mod:`gateway.compose`), so
    that states reconciled at start-up are announced too."""

    def __init__(
        self,
        topics: TopicMap,
        *,
        confirmed_lookup: ConfirmedLookup = no_confirmation,
        confirmed_prefetch: ConfirmedPrefetch = no_prefetch,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.topics = topics
        self.confirmed_lookup = confirmed_lookup
        self.confirmed_prefetch = confirmed_prefetch
        self.clock = clock
        self.availability: dict[str, p.DeviceAvailability] = {}
        self._revoked: set[str] | None = None
        self._watched: weakref.WeakSet[Session] = weakref.WeakSet()
        self._wakeups: list[Callable[[], None]] = []

    def on_commit(self, wakeup: Callable[[], None]) -> Callable[[], None]:
        """Call ``wakeup()`` (from the committing thread) after a transaction that added
        outbox rows commits: the relay uses it to publish at once. Returns the function that
        removes it again."""
        self._wakeups.append(wakeup)
        return lambda: self._wakeups.remove(wakeup) if wakeup in self._wakeups else None

    def _watch(self, session: Session) -> None:
        if session in self._watched:
            return
        self._watched.add(session)

        def committed(_: Session) -> None:
            for wakeup in list(self._wakeups):
                try:
                    wakeup()
                except Exception:  # a wakeup must never disturb a commit
                    log.exception("outbox wakeup failed")

        def rolled_back(_: Session) -> None:
            self._revoked = None  # rebuilt from the engine at the next change

        event.listen(session, "after_commit", committed, once=True)
        event.listen(session, "after_rollback", rolled_back, once=True)

    # ------------------------------------------------------------------ the core listener

    def __call__(
        self, session: Session, core: Core, ctx: CommandContext | None, changes: Changes
    ) -> None:
        if not changes.credentials:
            return
        if self._revoked is None:
            self._revoked = {
                number
                for number, state in core.engine.states.items()
                if state.revoked and number not in changes.credentials
            }
        self._buffer_states(session, core, changes.credentials)
        for number, state in changes.credentials.items():
            if state is not None and state.revoked:
                if number not in self._revoked:
                    self._revoked.add(number)
                    self.enqueue_event(
                        session,
                        p.CredentialRevokedBody(
                            number=number,
                            credential_kind=state.kind.value,
                            reasons=[r.value for r in state.reasons],
                            revision=state.revision,
                            request_id=ctx.request_id if ctx else None,
                            command=ctx.command.name if ctx and ctx.command else None,
                        ),
                    )
            else:
                self._revoked.discard(number)

    def _buffer_states(
        self, session: Session, core: Core, states: dict[str, DesiredCredential | None]
    ) -> None:
        """Queue the retained states of a transaction's changed credentials at its commit:
        one message per credential (the last state wins: the topic is retained) and one
        statement for all of them."""
        pending: dict[str, Core] | None = session.info.get(_STATES)
        if pending is None:
            pending = session.info[_STATES] = {}

            def write(sess: Session) -> None:
                queued: dict[str, Core] = sess.info.pop(_STATES, {})
                if not queued:
                    return
                at = self.clock()
                messages = []
                by_owner: dict[Core, list[str]] = {}
                for number, owner in queued.items():
                    by_owner.setdefault(owner, []).append(number)
                for owner, numbers in by_owner.items():
                    self.confirmed_prefetch(sess, owner, numbers)
                for number, owner in queued.items():
                    state = owner.engine.states.get(number)
                    if state is None:
                        payload = b""  # clears the retained message
                    else:
                        confirmed = self.confirmed_lookup(sess, owner, number)
                        payload = to_json(credential_state_payload(state, confirmed, at))
                    messages.append((self.topics.credential_state(number), payload))
                outbox.append_many(sess, messages, qos=1, retain=True, at=at)

            def dropped(sess: Session) -> None:
                sess.info.pop(_STATES, None)

            event.listen(session, "before_commit", write, once=True)
            event.listen(session, "after_rollback", dropped, once=True)
        for number in states:
            pending[number] = core
        self._watch(session)

    # ------------------------------------------------------------------ public helpers

    def _put_state(self, session: Session, core: Core, number: str, now: datetime) -> int:
        topic = self.topics.credential_state(number)
        state = core.engine.states.get(number)
        if state is None:
            payload = b""  # clears the retained message
        else:
            confirmed = self.confirmed_lookup(session, core, number)
            payload = to_json(credential_state_payload(state, confirmed, now))
        self._watch(session)
        return outbox.append(session, topic, payload, qos=1, retain=True, at=now)

    def enqueue_credential_state(self, session: Session, core: Core, number: str) -> int:
        """Queue the retained state of credential ``number`` as the core's engine sees it now
        (an empty retained message when it does not exist); returns the outbox id. Call it
        after storing a new confirmation, in the same transaction."""
        return self._put_state(session, core, number, self.clock())

    def enqueue_availability(
        self, session: Session, device_id: str, online: bool, reason: str
    ) -> int:
        """Queue the retained availability of a station or controller; returns the outbox
        id. Raises ValueError naming the field when ``device_id`` or ``reason`` is invalid."""
        try:
            _DEVICE_ID.validate_python(device_id)
        except ValidationError as exc:
            raise ValueError(f"device_id: {exc.errors()[0]['msg']}") from None
        try:
            payload = p.DeviceAvailability(
                state="online" if online else "offline", reason=reason, at=self.clock()
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        self.availability[device_id] = payload
        self._watch(session)
        return outbox.append(
            session, self.topics.device_availability(device_id), to_json(payload), retain=True
        )

    def enqueue_event(self, session: Session, body: p.EventBody) -> None:
        """Queue an event on the events topic. Its ``seq`` is its outbox id, given when the
        transaction's events are written together (``outbox.append_numbered``): events get
        increasing ``seq`` in the order they were queued.

        ``body`` is the event's fields but ``id``, ``seq`` and ``at``, which the gateway sets.
        Raises ValueError naming the field when they do not fit (a naive clock)."""
        model = p.EVENT_KINDS[body.kind]
        try:
            evt = model.model_validate(
                {**dict(body), "id": uuid.uuid4(), "seq": 0, "at": self.clock()}
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        self._watch(session)
        outbox.append_numbered(
            session,
            self.topics.events(),
            lambda seq: to_json(evt.model_copy(update={"seq": seq})),
            qos=1,
        )

    def enqueue_all_states(self, session: Session, core: Core, numbers: Iterable[str]) -> int:
        """Queue the state of each of ``numbers``; returns how many."""
        now = self.clock()
        count = 0
        numbers = list(numbers)
        self.confirmed_prefetch(session, core, numbers)
        for number in numbers:
            self._put_state(session, core, number, now)
            count += 1
        return count

    def enqueue_known_availability(self, session: Session) -> int:
        """Queue again the last availability of every device reported since start."""
        for device_id, payload in self.availability.items():
            self._watch(session)
            outbox.append(
                session, self.topics.device_availability(device_id), to_json(payload), retain=True
            )
        return len(self.availability)


# ---------------------------------------------------------------------- the relay


class OutboxRelay:
    """Publishes the outbox, oldest first, while a broker session is up."""

    BATCH = 500
    REPLAY_MAX = 50_000
    """At most this many recently published rows are sent again after a lost connection."""
    POLL_S = 1.0
    """Fallback polling interval (rows written by other processes wake nobody)."""
    MARK_AFTER_S = 0.5
    """Acknowledged rows are marked published in the store at most this long afterwards (or
    as soon as BATCH of them wait): one transaction for many. Until then the relay reads past
    them; a crash in between only publishes them again (at least once)."""
    REPUBLISH_CHUNK = 500
    PURGE_EVERY_S = 3600.0
    KEEP_PUBLISHED = timedelta(days=1)

    def __init__(
        self, gateway: Gateway, publisher: StatePublisher, *, replay_s: float = 30.0
    ) -> None:
        self.gateway = gateway
        self.publisher = publisher
        self.replay = timedelta(seconds=replay_s)
        """Rows published this recently are sent again after a lost connection, in case the
        broker lost them (a broker killed between two saves)."""
        self.published = 0
        self._unmarked: list[int] = []
        """Ids acknowledged by the broker and not yet marked published, ascending."""
        self._unmarked_since = 0.0
        self._wake = asyncio.Event()
        self._last_purge = 0.0
        loop = asyncio.get_running_loop()

        def wakeup() -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._wake.set)

        self.detach = publisher.on_commit(wakeup)
        """Stop being woken by the publisher (when the bridge stops)."""

    async def run(self, session: BrokerSession, *, replay: bool) -> None:
        """Publish until cancelled; raises ConnectionLost when the session breaks. With
        ``replay``, first publish again what was published in the last ``replay_s``."""
        core = self.gateway.core
        loop = asyncio.get_running_loop()
        # Rows acknowledged on the last connection are marked first, so the replay sees them.
        await self.flush_marks()
        if replay and self.replay:
            rows = await self._call("reading the outbox", self._read, core, True)
            if rows:
                log.info("republishing the %d most recently published messages", len(rows))
                await session.publish_many([self._message(r) for r in rows])
        while True:
            self._wake.clear()
            after = self._unmarked[-1] if self._unmarked else 0
            rows = await self._call("reading the outbox", self._read, core, False, after)
            if rows:
                await session.publish_many([self._message(r) for r in rows])
                if not self._unmarked:
                    self._unmarked_since = loop.time()
                self._unmarked.extend(r.id for r in rows)
                self.published += len(rows)
                if self._marks_due(loop.time()):
                    await self.flush_marks()
                continue
            if self._unmarked:
                if self._marks_due(loop.time()):
                    await self.flush_marks()
                    continue
                wait_s = self._unmarked_since + self.MARK_AFTER_S - loop.time()
            else:
                await self._maybe_purge(core)
                wait_s = self.POLL_S
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, min(wait_s, self.POLL_S))):
                    await self._wake.wait()

    def _marks_due(self, now: float) -> bool:
        return bool(self._unmarked) and (
            len(self._unmarked) >= self.BATCH or now - self._unmarked_since >= self.MARK_AFTER_S
        )

    async def flush_marks(self) -> None:
        """Mark the acknowledged rows published now (also when the bridge stops)."""
        if self._unmarked:
            ids = list(self._unmarked)
            await self._call("marking the outbox", self._mark, self.gateway.core, ids)
            del self._unmarked[: len(ids)]

    async def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        async for attempt in retrying(log, what):
            with attempt:
                return await self.gateway.call(fn, *args)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _message(row: outbox.OutboxMessage) -> OutboundMessage:
        return OutboundMessage(row.topic, row.payload, qos=row.qos, retain=row.retain)

    def _read(self, core: Core, recent: bool, after: int = 0) -> list[outbox.OutboxMessage]:
        with core.db.session(readonly=True) as s:
            if recent:
                return outbox.recent_published(
                    s, since=utcnow() - self.replay, limit=self.REPLAY_MAX
                )
            return outbox.pending(s, limit=self.BATCH, after_id=after)

    @staticmethod
    def _mark(core: Core, ids: list[int]) -> None:
        with core.db.session() as s:
            outbox.mark_published(s, ids)

    async def _maybe_purge(self, core: Core) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_purge < self.PURGE_EVERY_S:
            return
        self._last_purge = loop.time()
        purged = await self._call("purging the outbox", self._purge, core)
        if purged:
            log.info("purged %d published outbox messages", purged)

    def _purge(self, core: Core) -> int:
        with core.db.session() as s:
            return outbox.purge_published(s, utcnow() - self.KEEP_PUBLISHED)

    # ------------------------------------------------------------------ republishing

    async def republish_all(self) -> int:
        """Queue the retained state of every credential and the known availability of every
        device, in chunks (for a broker that lost its retained messages). Returns how many
        credential states were queued."""
        core = self.gateway.core
        numbers = await self.gateway.call(self._numbers, core)
        total = 0
        for start in range(0, len(numbers), self.REPUBLISH_CHUNK):
            chunk = numbers[start : start + self.REPUBLISH_CHUNK]
            total += await self.gateway.call(self._enqueue_states, core, chunk)
        await self.republish_availability()
        return total

    async def republish_availability(self) -> int:
        """Queue the last known availability of every device again; returns how many."""
        return await self.gateway.call(self._enqueue_availability, self.gateway.core)

    @staticmethod
    def _numbers(core: Core) -> list[str]:
        with core.db.session(readonly=True) as s:
            stored = desired_store.credential_numbers(s)
        return sorted(set(stored) | set(core.engine.states))

    def _enqueue_states(self, core: Core, numbers: list[str]) -> int:
        with core.db.session() as s:
            return self.publisher.enqueue_all_states(s, core, numbers)

    def _enqueue_availability(self, core: Core) -> int:
        with core.db.session() as s:
            return self.publisher.enqueue_known_availability(s)


__all__ = [
    "ConfirmedLookup",
    "ConfirmedPrefetch",
    "OutboxRelay",
    "StatePublisher",
    "credential_state_payload",
    "no_confirmation",
    "no_prefetch",
    "to_json",
]

"""Inbound requests: from the broker session's buffer to the core and back as responses.

For each batch taken from the session's bounded buffer (revocations first):

1. every message is parsed and validated (:mod:`gateway.bridge.envelope`); a bad one gets
   its error response without reaching the core;
2. the valid ones go to the core thread in **one** call: expired requests are refused there
   (just before the transaction, so never applied late; a request seen before still gets its
   stored response), the rest are applied with :meth:`Core.submit_many`, in one transaction;
3. the responses are published (QoS 1, waiting for the broker's PUBACK), those of urgent
   requests (revocations) first, and only then are the requests acknowledged to the broker.

A crash or a lost connection anywhere in between leaves the requests unacknowledged: the broker
delivers them again, and the inbox answers those already applied with their stored response.
Step 3 of one batch overlaps step 2 of the next.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.audit import log as audit_log
from gateway.bridge.client import (
    MAX_INFLIGHT_OUT,
    BrokerSession,
    InboundMessage,
    OutboundMessage,
)
from gateway.bridge.envelope import ParsedRequest, RequestError, parse_request
from gateway.bridge.retry import retrying, transient
from gateway.bridge.topics import TopicMap
from gateway.commands.model import COMMANDS_BY_NAME
from gateway.core import Outcome, Submission, request_digest
from gateway.store import inbox

if TYPE_CHECKING:
    from gateway.core import Core
    from gateway.runtime import Gateway

log = logging.getLogger(__name__)

SOURCE = "mqtt"

_RESPONSE_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""A response's encoder, made once (``json.dumps`` with options makes one per call)."""


def is_urgent(topics: TopicMap) -> Callable[[str], bool]:
    """Classifier for the inbound buffer: requests of revoking commands go first."""
    revoking = frozenset(
        topics.topic(f"request.{name}") for name, c in COMMANDS_BY_NAME.items() if c.revokes
    )
    return revoking.__contains__


@dataclass
class Pending:
    """One received request on its way through the pipeline."""

    message: InboundMessage
    name: str
    request: ParsedRequest | None
    response: dict[str, Any] | None
    reply_to: str
    operator: str = ""
    status: str = ""
    ignored: bool = False
    """A retained request (a replay from the broker's retained store): acknowledged, not
    answered."""
    failure: str | None = None
    """The type of the unexpected exception this request raised (it is answered
    ``INTERNAL``, logged and audited)."""


class ResponseQueue:
    """Requests answered and waiting for their response to be published: the responses of
    urgent requests (revocations) go out first, each kind in the order it was applied."""

    def __init__(self, urgent: Callable[[str], bool]) -> None:
        self._urgent = urgent
        self._queues: tuple[collections.deque[Pending], ...] = (
            collections.deque(),
            collections.deque(),
        )
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._queues[0]) + len(self._queues[1])

    def put(self, batch: list[Pending]) -> None:
        for pending in batch:
            self._queues[0 if self._urgent(pending.message.topic) else 1].append(pending)
        if batch:
            self._ready.set()

    async def take(self, n: int) -> list[Pending]:
        """Wait for at least one; return up to ``n``, urgent ones first."""
        while not len(self):
            self._ready.clear()
            await self._ready.wait()
        out: list[Pending] = []
        for queue in self._queues:
            while queue and len(out) < n:
                out.append(queue.popleft())
        return out


class RequestPipeline:
    """Takes requests from a :class:`BrokerSession`, applies them, responds, acknowledges."""

    def __init__(
        self,
        gateway: Gateway,
        topics: TopicMap,
        *,
        max_batch: int,
        system_operator: str,
        client_operators: dict[str, str],
        on_presence: Callable[[InboundMessage], None] = lambda message: None,
    ) -> None:
        self.gateway = gateway
        self.topics = topics
        self.max_batch = max_batch
        self.system_operator = system_operator
        self.client_operators = dict(client_operators)
        self.on_presence = on_presence
        self.urgent = is_urgent(topics)
        """Called with each message on the bridge state topic (acknowledged, not answered)."""
        self.handled = 0

    async def run(self, session: BrokerSession) -> None:
        """Serve ``session`` until cancelled or the session breaks (ConnectionLost)."""
        responses = ResponseQueue(self.urgent)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._respond(session, responses), name="lockgate-mqtt-responses")
            tg.create_task(self._work(session, responses), name="lockgate-mqtt-requests")

    async def _work(self, session: BrokerSession, responses: ResponseQueue) -> None:
        while True:
            messages = await session.buffer.take(self.max_batch)
            batch = [self._prepare_safely(m) for m in messages]
            todo = [p for p in batch if p.response is None and not p.ignored]
            if todo:
                await self._apply(todo)
            failed = [p for p in batch if p.failure is not None]
            if failed:
                await self._record_failures(failed)
            # Bounded by the session: it holds at most its limit of unacknowledged requests.
            responses.put(batch)

    # ------------------------------------------------------------------ step 1: parse

    def _prepare_safely(self, message: InboundMessage) -> Pending:
        """:meth:`_prepare`, turning an unexpected exception into an ``INTERNAL`` answer:
        one message must never stop the pipeline (the broker would redeliver it forever)."""
        try:
            return self._prepare(message)
        except Exception as exc:
            name = self.topics.request_name(message.topic) or ""
            pending = Pending(
                message, name, None, None, self.topics.response_topic(name or "unknown")
            )
            log.exception("request on %s could not be read", message.topic)
            self._fail(pending, _readable_id(message.payload), exc)
            return pending

    def _fail(self, pending: Pending, request_id: str | None, exc: Exception) -> None:
        pending.failure = type(exc).__name__
        pending.response = RequestError(
            request_id, "INTERNAL", f"the gateway failed to handle it ({pending.failure})"
        ).response()

    def _prepare(self, message: InboundMessage) -> Pending:
        name = self.topics.request_name(message.topic) or ""
        reply_to = self.topics.response_topic(name) if name else ""
        pending = Pending(message, name, None, None, reply_to)
        if message.topic == self.topics.bridge_state():
            pending.ignored = True
            self.on_presence(message)
            return pending
        if message.retain:
            log.warning(
                "ignoring a retained request on %s: requests must not be retained", message.topic
            )
            pending.ignored = True
            return pending
        parsed = parse_request(name, message.payload)
        if message.response_topic is not None:
            if not self._acceptable_reply(message.response_topic):
                pending.response = RequestError(
                    parsed.request_id,
                    "INVALID",
                    f"MQTT response topic must be under {self.topics.response_prefix} "
                    "without wildcards",
                    "response_topic",
                ).response()
                return pending
            pending.reply_to = message.response_topic
        if isinstance(parsed, RequestError):
            pending.response = parsed.response()
            return pending
        pending.request = parsed
        if parsed.client is None:
            pending.operator = self.system_operator
        elif parsed.client in self.client_operators:
            pending.operator = self.client_operators[parsed.client]
        else:
            pending.response = RequestError(
                parsed.request_id,
                "FORBIDDEN",
                f"client {parsed.client!r} is not configured (mqtt.client_operators)",
                "client",
            ).response()
        return pending

    def _acceptable_reply(self, topic: str) -> bool:
        return (
            topic.startswith(self.topics.response_prefix)
            and len(topic) > len(self.topics.response_prefix)
            and not any(c in topic for c in "+#\x00")
        )

    # ------------------------------------------------------------------ step 2: apply

    async def _apply(self, batch: list[Pending]) -> None:
        """Apply ``batch`` on the core thread; fills each ``response``."""
        async for attempt in retrying(log, f"applying {len(batch)} requests"):
            with attempt:
                await self._apply_isolating(batch)

    async def _apply_isolating(self, batch: list[Pending]) -> None:
        try:
            outcomes = await self.gateway.call(self._apply_on_core, self.gateway.core, batch)
        except Exception as exc:
            if transient(exc):
                raise
            if len(batch) == 1:
                request_id = batch[0].request.request_id if batch[0].request else None
                log.exception("request %s (%s) could not be applied", request_id, batch[0].name)
                self._fail(batch[0], request_id, exc)
                return
            # One request broke the whole transaction: apply them one by one to find it.
            for pending in batch:
                await self._apply_isolating([pending])
            return
        for pending, outcome in zip(batch, outcomes, strict=True):
            pending.response = outcome.response()
            pending.status = "duplicate" if outcome.duplicate else outcome.status

    @staticmethod
    def _apply_on_core(core: Core, batch: list[Pending]) -> list[Outcome]:
        """Runs on the core thread: refuse the expired, submit the rest in one transaction."""
        requests: list[tuple[ParsedRequest, str]] = []
        for pending in batch:
            if pending.request is None:
                raise ValueError("only parsed requests are applied")
            requests.append((pending.request, pending.operator))
        return apply_requests(core, requests, source=SOURCE)

    async def _record_failures(self, failed: list[Pending]) -> None:
        """Audit the requests answered ``INTERNAL`` (no payload: it may hold personal data)."""
        entries = [
            {
                "request": p.name or None,
                "topic": p.message.topic,
                "request_id": p.response["request_id"] if p.response else None,
                "error": p.failure,
                "source": SOURCE,
            }
            for p in failed
        ]
        actor = self.system_operator

        def record(core: Core) -> None:
            with core.db.session() as s:
                for data in entries:
                    audit_log.append(
                        s,
                        at=core.clock(),
                        actor=actor,
                        action="request_failed",
                        subjects=[f"request {data['request_id']}"] if data["request_id"] else [],
                        data=data,
                    )

        try:
            async for attempt in retrying(log, "auditing failed requests"):
                with attempt:
                    await self.gateway.call(record, self.gateway.core)
        except Exception:
            log.exception("the failed requests could not be audited: %s", entries)

    # ------------------------------------------------------------------ step 3: respond

    async def _respond(self, session: BrokerSession, queue: ResponseQueue) -> None:
        while True:
            batch = await queue.take(MAX_INFLIGHT_OUT)
            await session.publish_many([self._response(p) for p in batch if not p.ignored])
            for pending in batch:
                session.ack(pending.message)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "request %s %s: %s",
                        pending.name,
                        pending.request.request_id if pending.request else None,
                        pending.status or "error",
                    )
            self.handled += len(batch)

    def _response(self, pending: Pending) -> OutboundMessage:
        assert pending.response is not None
        topic = pending.reply_to or self.topics.response_topic("unknown")
        return OutboundMessage(
            topic,
            _RESPONSE_JSON.encode(pending.response).encode(),
            qos=1,
            correlation_data=pending.message.correlation_data,
        )


def apply_requests(
    core: Core, requests: list[tuple[ParsedRequest, str]], *, source: str
) -> list[Outcome]:
    """Apply parsed requests, each with the operator it acts as, on the core thread: the
    expired ones are refused (never applied late; a request seen before still gets its stored
    response), the rest are submitted in one transaction. Shared by the MQTT pipeline and the
    HTTP API (``source`` says which)."""
    now = core.clock()
    outcomes: dict[int, Outcome] = {}
    live: list[tuple[int, Submission]] = []
    for i, (request, operator) in enumerate(requests):
        if request.expires_at is not None and request.expires_at <= now:
            outcomes[i] = _expired(core, request)
        else:
            submission = Submission(
                request.command, operator, request_id=request.request_id, source=source
            )
            live.append((i, submission))
    if live:
        applied = core.submit_many([submission for _, submission in live])
        outcomes.update(zip((i for i, _ in live), applied, strict=True))
    return [outcomes[i] for i in range(len(requests))]


def _readable_id(payload: bytes) -> str | None:
    """The request id of a payload, if it can be read at all."""
    try:
        obj = json.loads(payload)
    except ValueError:
        return None
    rid = obj.get("request_id") if isinstance(obj, dict) else None
    return rid if isinstance(rid, str) and 0 < len(rid) <= 200 and rid.isprintable() else None


def _expired(core: Core, request: ParsedRequest) -> Outcome:
    """The response to an expired request: its stored response if this very request (same
    name and content) was applied before, else ``EXPIRED`` (not recorded: nothing was
    applied)."""
    with core.db.session(readonly=True) as s:
        seen = inbox.lookup(s, request.request_id)
    if seen is not None and seen.matches(request.name, request_digest(request.command)):
        r = seen.response
        return Outcome(
            request.request_id, r["status"], r.get("data") or {}, r.get("error"), duplicate=True
        )
    return Outcome.failure(
        request.request_id,
        "EXPIRED",
        f"the request expired at {request.expires_at.isoformat() if request.expires_at else '?'}"
        " and was not applied",
        "expires_at",
    )


__all__ = ["Pending", "RequestPipeline", "ResponseQueue", "apply_requests", "is_urgent"]

"""Host side of the key-station link: sequence numbers, ACK/NAK, bounded retransmission,
timeouts that follow the line speed, pipelining of requests within the station's window,
and acknowledgement / de-duplication of the station's notifications.

The link is fed by a transport (``data_received`` / ``connection_lost``) and writes through
it; it owns no task of its own (only short-lived, named tasks inside :meth:`HostLink.pipeline`
that never outlive the call).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

from drivers.base import DeviceTimeout, DeviceUnavailable, DriverError, ProtocolError
from drivers.serialstation.codes import ErrorCode, MessageType
from drivers.serialstation.frames import (
    MAX_PAYLOAD_LIMIT,
    OVERHEAD,
    Frame,
    FrameDecoder,
    FrameError,
    FrameErrorKind,
)
from drivers.serialstation.messages import (
    Ack,
    ErrorReply,
    Message,
    Nak,
    decode_message,
    encode_message,
)
from drivers.serialstation.wire import DecodeError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
BITS_PER_BYTE: Final = 10
"""8N1: a start bit, eight data bits, a stop bit."""
NOTIFICATION_MEMORY = 16


class Sink(Protocol):
    """What the link needs from a transport."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class StationRefused(Exception):
    """The station answered a request with ERROR (it was received and refused)."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(f"{code.name}{': ' + detail if detail else ''}")
        self.code = code
        self.detail = detail


@dataclass(slots=True)
class LinkStats:
    """Counters of one link since it was created."""

    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0
    bytes_received: int = 0
    retransmissions: int = 0
    naks_received: int = 0
    naks_sent: int = 0
    damaged_replies: int = 0
    duplicate_notifications: int = 0


class _Retry:
    """Marker put in a request's inbox: its frame or its reply was damaged, resend now."""


_RETRY: Final = _Retry()


class _Pending:
    __slots__ = ("damaged", "inbox")

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[Message | _Retry | DriverError] = asyncio.Queue()
        self.damaged = False


def wire_seconds(nbytes: int, baudrate: int) -> float:
    """Time ``nbytes`` take on an 8N1 line at ``baudrate``."""
    return nbytes * BITS_PER_BYTE / baudrate


class HostLink:
    """Request/response exchange with one station over one transport."""

    def __init__(
        self,
        *,
        device_id: str,
        baudrate: int,
        timeout_s: float,
        retries: int,
        on_notification: Callable[[Message], None],
        on_lost: Callable[[DriverError], None],
    ) -> None:
        self._device_id = device_id
        self._baudrate = baudrate
        self._byte_time = wire_seconds(1, baudrate)
        self._timeout_s = timeout_s
        self._retries = retries
        self._on_notification = on_notification
        self._on_lost = on_lost
        self._loop = asyncio.get_running_loop()
        self._decoder = FrameDecoder(max_payload=MAX_PAYLOAD_LIMIT)
        self._sink: Sink | None = None
        self._pending: dict[int, _Pending] = {}
        self._next_seq = 0
        self._tx_done = 0.0
        self._max_payload = MAX_PAYLOAD_LIMIT
        self._window = 1
        self._slots = asyncio.Semaphore(1)
        """One slot per request the station lets us have unanswered (its window)."""
        self._seen_notifications: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._idle_handle: asyncio.TimerHandle | None = None
        self._error: DriverError | None = None
        self.stats = LinkStats()

    # ---------------------------------------------------------------- configuration

    def attach(self, sink: Sink) -> None:
        self._sink = sink
        self._error = None

    def configure(self, *, max_payload: int, window: int) -> None:
        """Apply the limits the station announced in HELLO_REPLY."""
        self._max_payload = max_payload
        self._window = window
        self._slots = asyncio.Semaphore(window)
        self._decoder.max_payload = max_payload

    def reset_session(self) -> None:
        """Forget notification history (the station does too when it answers HELLO)."""
        self._seen_notifications.clear()

    @property
    def failed(self) -> bool:
        """True once the link was lost or closed; every request then fails."""
        return self._error is not None

    @property
    def max_payload(self) -> int:
        return self._max_payload

    @property
    def window(self) -> int:
        return self._window

    @property
    def idle_timeout(self) -> float:
        """Silence after which a partial frame is given up."""
        return max(0.1, 64 * self._byte_time)

    # ---------------------------------------------------------------- transport callbacks

    def data_received(self, data: bytes) -> None:
        self.stats.bytes_received += len(data)
        self._handle(self._decoder.feed(data))
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        if self._decoder.partial:
            self._idle_handle = self._loop.call_later(self.idle_timeout, self._idle)

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"link lost: {exc}" if exc else "link closed by the station"
        self._fail(DeviceUnavailable(reason, device_id=self._device_id))

    def close(self) -> None:
        """Close the transport; requests in flight fail with :class:`DeviceUnavailable`."""
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.close()
        self._fail(DeviceUnavailable("link closed", device_id=self._device_id), notify=False)

    def _fail(self, error: DriverError, *, notify: bool = True) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        if self._error is not None:
            return
        self._error = error
        self._sink = None
        for pending in self._pending.values():
            pending.inbox.put_nowait(error)
        if notify:
            self._on_lost(error)

    def _idle(self) -> None:
        self._idle_handle = None
        self._handle(self._decoder.flush())

    # ---------------------------------------------------------------- receiving

    def _handle(self, items: list[Frame | FrameError]) -> None:
        for item in items:
            if isinstance(item, FrameError):
                self._damaged(item)
                continue
            self.stats.frames_received += 1
            try:
                mtype = MessageType(item.type)
                message = decode_message(item)
            except (ValueError, DecodeError) as exc:
                log.warning(
                    "%s: dropping invalid frame type %#04x: %s", self._device_id, item.type, exc
                )
                continue
            if mtype.is_notification:
                self._notification(item, message)
            elif mtype.is_response:
                self._response(item.seq, message)
            else:
                log.warning("%s: station sent a request frame %s", self._device_id, mtype.name)

    def _damaged(self, error: FrameError) -> None:
        try:
            mtype = MessageType(error.type)
        except ValueError:
            return
        if mtype.is_notification and error.kind is not FrameErrorKind.BAD_LENGTH:
            code = (
                ErrorCode.BAD_CRC if error.kind is FrameErrorKind.BAD_CRC else ErrorCode.TRUNCATED
            )
            self.stats.naks_sent += 1
            self._send(encode_message(error.seq, Nak(code)))
        elif mtype.is_response and (pending := self._pending.get(error.seq)) is not None:
            self.stats.damaged_replies += 1
            pending.damaged = True
            pending.inbox.put_nowait(_RETRY)

    def _response(self, seq: int, message: Message) -> None:
        pending = self._pending.get(seq)
        if pending is None:
            return  # a late duplicate of a reply already taken
        if isinstance(message, Nak):
            self.stats.naks_received += 1
            pending.damaged = True
            pending.inbox.put_nowait(_RETRY)
        else:
            pending.inbox.put_nowait(message)

    def _notification(self, frame: Frame, message: Message) -> None:
        self._send(encode_message(frame.seq, Ack()))
        key = (frame.seq, zlib.crc32(frame.payload))
        if key in self._seen_notifications:
            self.stats.duplicate_notifications += 1
            return
        self._seen_notifications[key] = None
        while len(self._seen_notifications) > NOTIFICATION_MEMORY:
            self._seen_notifications.popitem(last=False)
        self._on_notification(message)

    # ---------------------------------------------------------------- sending

    def _send(self, raw: bytes) -> None:
        if self._sink is None:
            return
        self._sink.write(raw)
        now = self._loop.time()
        self._tx_done = max(now, self._tx_done) + len(raw) * self._byte_time
        self.stats.frames_sent += 1
        self.stats.bytes_sent += len(raw)

    def _alloc_seq(self) -> int:
        for _ in range(256):
            seq = self._next_seq
            self._next_seq = (self._next_seq + 1) & 0xFF
            if seq not in self._pending:
                return seq
        raise RuntimeError("no free sequence number")  # the window is at most 32

    async def request(self, message: Message, expect: type[M]) -> M:
        """Send ``message`` and return the station's reply of type ``expect``.

        Retransmits on timeout, NAK or a damaged reply, at most ``retries`` times. Raises
        :class:`StationRefused` for ERROR, :class:`DeviceTimeout` when the station stayed
        silent, :class:`ProtocolError` when every attempt came back damaged or the reply is
        of another type, :class:`DeviceUnavailable` when the link is lost.

        Concurrent requests share the station's window: a request waits for a free slot
        before it is sent."""
        async with self._slots:
            return await self._exchange(message, expect)

    async def _exchange(self, message: Message, expect: type[M]) -> M:
        if self._error is not None:
            raise self._error
        seq = self._alloc_seq()
        raw = encode_message(seq, message)
        pending = _Pending()
        self._pending[seq] = pending
        reply_budget = self._window * (self._max_payload + OVERHEAD) * self._byte_time
        damaged_every_time = True
        try:
            for attempt in range(self._retries + 1):
                if attempt:
                    self.stats.retransmissions += 1
                pending.damaged = False
                self._send(raw)
                wait = self._tx_done - self._loop.time() + reply_budget + self._timeout_s
                try:
                    async with asyncio.timeout(wait):  # wait_for may swallow a cancel on 3.11
                        item = await pending.inbox.get()
                except TimeoutError:
                    damaged_every_time &= pending.damaged
                    continue
                if isinstance(item, _Retry):
                    continue
                if isinstance(item, DriverError):
                    raise item
                if isinstance(item, ErrorReply):
                    raise StationRefused(item.code, item.detail)
                if isinstance(item, expect):
                    return item
                raise ProtocolError(
                    f"{message.TYPE.name} was answered with {item.TYPE.name}",
                    device_id=self._device_id,
                    field="type",
                )
        finally:
            del self._pending[seq]
        tries = self._retries + 1
        if damaged_every_time:
            raise ProtocolError(
                f"{message.TYPE.name}: every reply was damaged or refused as damaged "
                f"({tries} attempts)",
                device_id=self._device_id,
                field="crc",
            )
        raise DeviceTimeout(
            f"{message.TYPE.name}: no reply after {tries} attempts", device_id=self._device_id
        )

    async def pipeline(
        self,
        messages: Sequence[Message],
        expect: type[M],
        on_reply: Callable[[int, M], None] | None = None,
    ) -> list[M]:
        """Send ``messages`` in order with up to ``window`` requests unanswered at a time
        (counting any other request in flight) and return the replies in order.
        ``on_reply(index, reply)`` is called as each reply arrives. On the first failure
        the rest is cancelled and the failure (of the lowest index) is raised."""
        replies: list[M | None] = [None] * len(messages)

        async def one(index: int, message: Message) -> None:
            reply = await self.request(message, expect)
            replies[index] = reply
            if on_reply is not None:
                on_reply(index, reply)

        tasks = [
            asyncio.create_task(one(i, m), name=f"serialstation:{self._device_id}:request-{i}")
            for i, m in enumerate(messages)
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if not task.cancelled() and (exc := task.exception()) is not None:
                raise exc
        out = [r for r in replies if r is not None]
        if len(out) != len(messages):
            raise asyncio.CancelledError()
        return out

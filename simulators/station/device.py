"""The device side of the key-station protocol: a programming station with a key slot.

:class:`StationDevice` answers the host's requests over a :class:`~simulators.station.ports.
Port`, sends KEY_INSERTED / KEY_REMOVED notifications (retransmitted until acknowledged),
stages writes and applies them atomically on a matching commit, recognises retransmitted
requests by sequence number and answers them from its reply cache without applying them
twice. Bytes take the time they would on a real line at ``baudrate`` (10 bits per byte) in
both directions, and the faults of a :class:`~simulators.station.faults.FaultPlan` are
applied on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field

from drivers.base import KeyAuditRecord
from drivers.serialstation.codes import (
    NAK_CODES,
    PROTOCOL_VERSION,
    AuditOutcomeCode,
    AuditReason,
    AuditSource,
    Capability,
    ErrorCode,
    MessageType,
    Mounting,
    WriteMode,
)
from drivers.serialstation.frames import Frame, FrameDecoder, FrameError, FrameErrorKind
from drivers.serialstation.image import (
    apply_delta,
    decode_delta,
    decode_image,
    encode_image,
    image_checksum,
)
from drivers.serialstation.link import wire_seconds
from drivers.serialstation.messages import (
    MAX_SERIAL,
    MAX_WINDOW,
    MIN_PAYLOAD,
    Ack,
    AuditCleared,
    AuditData,
    AuditEntry,
    ClearAudit,
    ErrorReply,
    Hello,
    HelloReply,
    KeyData,
    KeyInfo,
    KeyInfoReply,
    KeyInsertedNotice,
    KeyRemovedNotice,
    Message,
    Nak,
    ReadAudit,
    ReadKey,
    WriteAbort,
    WriteBegin,
    WriteChunk,
    WriteCommit,
    audit_digest,
    decode_message,
    encode_message,
)
from drivers.serialstation.wire import DecodeError, check_text, instant_to_wire
from simulators.station.faults import FaultPlan
from simulators.station.keys import KeyRegistry, VirtualKey
from simulators.station.ports import Port

log = logging.getLogger(__name__)

REPLY_CACHE = 32
"""Replies remembered for duplicate requests; with a window of at most 32 outstanding
requests and 256 sequence numbers, a cached reply is never mistaken for a new request's."""
ALL_CAPABILITIES = Capability.DELTA | Capability.AUDIT | Capability.BLACKLIST
ALL_CAPABILITIES |= Capability.REVALIDATION


class Refused(Exception):
    """A request is answered with ERROR ``code`` naming ``detail``."""

    def __init__(self, code: ErrorCode, detail: str = "") -> None:
        super().__init__(f"{code.name} {detail}")
        self.code = code
        self.detail = detail


class _Disconnect(Exception):
    """The disconnect fault fired: drop the link without answering."""


@dataclass
class StationConfig:
    """What the station announces and how it behaves."""

    station_id: str = "station-1"
    mounting: Mounting = Mounting.DESK
    capabilities: Capability = ALL_CAPABILITIES
    max_access_entries: int = 2000
    max_payload: int = 1024
    window: int = 8
    firmware: str = "sim-1.0"
    max_image_bytes: int = 1 << 20
    baudrate: int = 115200
    """Emulated line speed; 0 means bytes move as fast as the host sends them."""
    protocol_version: int = PROTOCOL_VERSION
    """Highest protocol version spoken; HELLO with any version 1..this one is accepted."""
    notify_timeout_s: float = 0.5
    notify_retries: int = 3

    def __post_init__(self) -> None:
        check_text(self.station_id, "station_id", min_len=1, max_len=MAX_SERIAL)
        check_text(self.firmware, "firmware", max_len=MAX_SERIAL)
        if not MIN_PAYLOAD <= self.max_payload <= 4096:
            raise ValueError(f"max_payload: must be {MIN_PAYLOAD}..4096")
        if not 1 <= self.window <= MAX_WINDOW:
            raise ValueError(f"window: must be 1..{MAX_WINDOW}")
        if not 0 <= self.max_access_entries <= 0xFFFF:
            raise ValueError("max_access_entries: must be 0..65535")
        if not 1 <= self.protocol_version <= PROTOCOL_VERSION:
            raise ValueError(f"protocol_version: must be 1..{PROTOCOL_VERSION}")
        if self.baudrate < 0:
            raise ValueError("baudrate: must be 0 (unlimited) or positive")
        self.mounting = Mounting(self.mounting)


@dataclass
class _Staging:
    key: VirtualKey
    begin: WriteBegin
    buffer: bytearray
    covered: bytearray
    chunks: int = 0


@dataclass
class DeviceStats:
    requests: int = 0
    duplicates: int = 0
    naks_sent: int = 0
    errors_sent: int = 0
    commits: int = 0
    notifications_sent: int = 0
    notifications_unacked: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class StationDevice:
    """One simulated programming station. Usable on its own (several can share one
    :class:`~simulators.station.keys.KeyRegistry`); :meth:`attach` connects it to a port."""

    def __init__(
        self,
        config: StationConfig,
        *,
        registry: KeyRegistry,
        faults: FaultPlan | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.faults = faults if faults is not None else FaultPlan()
        self.stats = DeviceStats()
        self.key: VirtualKey | None = None
        self._port: Port | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._rxq: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        self._txq: asyncio.Queue[bytes] = asyncio.Queue()
        self._notes: asyncio.Queue[Message] = asyncio.Queue()
        self._acks: dict[int, asyncio.Queue[bool]] = {}
        self._replies: OrderedDict[int, tuple[int, int, bytes]] = OrderedDict()
        self._staging: _Staging | None = None
        self._interrupted = False
        self._note_seq = 0
        self._version = 1
        self._rx_clock = 0.0
        self._tx_clock = 0.0
        self._decoder = FrameDecoder(max_payload=config.max_payload)
        self.disconnected = asyncio.Event()

    # ------------------------------------------------------------------ key slot

    def insert(self, serial: str) -> VirtualKey:
        """Insert key ``serial`` (it must exist and be in no station)."""
        key = self.registry.get(serial)
        if self.key is not None:
            raise ValueError(f"serial: station already holds key {self.key.serial}")
        if key.location is not None:
            raise ValueError(f"serial: key {serial} is in station {key.location}")
        key.location = self.config.station_id
        self.key = key
        self._notify(KeyInsertedNotice(serial))
        return key

    def remove(self) -> VirtualKey:
        """Pull the inserted key out; a staged write for it is discarded."""
        key = self.key
        if key is None:
            raise ValueError("serial: no key is inserted")
        key.location = None
        self.key = None
        if self._staging is not None:
            self._staging = None
            self._interrupted = True
        self._notify(KeyRemovedNotice(key.serial))
        return key

    def _notify(self, message: Message) -> None:
        if self._port is not None:
            self._notes.put_nowait(message)

    # ------------------------------------------------------------------ life cycle

    @property
    def attached(self) -> bool:
        return self._port is not None

    @property
    def port_description(self) -> str:
        return self._port.description if self._port is not None else ""

    async def attach(self, port: Port) -> None:
        """Serve the protocol on ``port`` until :meth:`detach` (or the link drops)."""
        if self._port is not None:
            raise RuntimeError("station is already attached to a port")
        self._port = port
        self.disconnected.clear()
        self._rxq = asyncio.Queue()
        self._txq = asyncio.Queue()
        self._notes = asyncio.Queue()
        self._decoder = FrameDecoder(max_payload=self.config.max_payload)
        self._replies.clear()
        sid = self.config.station_id
        self._tasks = [
            asyncio.create_task(self._rx_loop(), name=f"station:{sid}:rx"),
            asyncio.create_task(self._tx_loop(), name=f"station:{sid}:tx"),
            asyncio.create_task(self._notify_loop(), name=f"station:{sid}:notify"),
        ]
        await port.start(self._on_data, self._on_lost)

    async def detach(self) -> None:
        """Stop serving and close the port. Idempotent; also called by the station itself
        when the link drops."""
        port, self._port = self._port, None
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        self._tasks = [t for t in self._tasks if t is current]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if port is not None:
            await port.close()
        self._staging = None
        self.disconnected.set()

    def _on_data(self, data: bytes) -> None:
        self.stats.bytes_received += len(data)
        self._rxq.put_nowait((asyncio.get_running_loop().time(), data))

    def _on_lost(self, exc: Exception | None) -> None:
        log.info("%s: link lost: %s", self.config.station_id, exc)
        self._rxq.put_nowait(None)

    # ------------------------------------------------------------------ line

    @property
    def _byte_time(self) -> float:
        return wire_seconds(1, self.config.baudrate) if self.config.baudrate else 0.0

    async def _rx_loop(self) -> None:
        loop = asyncio.get_running_loop()
        idle = max(0.1, 64 * self._byte_time)
        piece = max(16, int(self.config.baudrate / 10 * 0.002)) if self.config.baudrate else 1 << 16
        try:
            while True:
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                    # cancellation that races with a completed get(), and detach() hangs.
                    async with asyncio.timeout(idle if self._decoder.partial else None):
                        item = await self._rxq.get()
                except TimeoutError:
                    for result in self._decoder.flush():
                        await self._handle(result)
                    continue
                if item is None:
                    break
                arrived, data = item
                data = self.faults.on_rx(data)
                for start in range(0, len(data), piece):
                    part = data[start : start + piece]
                    if self._byte_time:
                        self._rx_clock = max(arrived, self._rx_clock) + len(part) * self._byte_time
                        delay = self._rx_clock - loop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    for result in self._decoder.feed(part):
                        await self._handle(result)
        except _Disconnect:
            log.info("%s: disconnect fault fired", self.config.station_id)
        await self.detach()

    async def _tx_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            raw = self.faults.on_tx(await self._txq.get())
            if self._byte_time:
                self._tx_clock = max(loop.time(), self._tx_clock) + len(raw) * self._byte_time
                delay = self._tx_clock - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if self._port is not None:
                self.stats.bytes_sent += len(raw)
                self._port.write(raw)

    def _send(self, raw: bytes) -> None:
        self._txq.put_nowait(raw)

    async def _notify_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            message = await self._notes.get()
            seq = self._note_seq
            self._note_seq = (seq + 1) & 0xFF
            raw = encode_message(seq, message)
            acks: asyncio.Queue[bool] = asyncio.Queue()
            self._acks[seq] = acks
            try:
                for _ in range(self.config.notify_retries + 1):
                    self.stats.notifications_sent += 1
                    self._send(raw)
                    backlog = max(0.0, self._tx_clock - loop.time())
                    wait = backlog + self.config.notify_timeout_s
                    acked = False
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            acked = await acks.get()
                    if acked:
                        break
                else:
                    self.stats.notifications_unacked += 1
            finally:
                del self._acks[seq]

    # ------------------------------------------------------------------ frames

    async def _handle(self, item: Frame | FrameError) -> None:
        if isinstance(item, FrameError):
            self._damaged(item)
            return
        try:
            mtype = MessageType(item.type)
        except ValueError:
            self._reply(item.seq, ErrorReply(ErrorCode.UNKNOWN_TYPE, "type"))
            return
        if mtype.is_response:
            acks = self._acks.get(item.seq)
            if acks is not None and mtype in (MessageType.ACK, MessageType.NAK):
                acks.put_nowait(mtype is MessageType.ACK)
            return
        if not mtype.is_request:
            self._reply(item.seq, ErrorReply(ErrorCode.UNKNOWN_TYPE, "type"))
            return
        self.stats.requests += 1
        fingerprint = (item.type, zlib.crc32(item.payload))
        cached = self._replies.get(item.seq)
        if mtype is not MessageType.HELLO and cached is not None and cached[:2] == fingerprint:
            self.stats.duplicates += 1
            self._send(cached[2])
            return
        try:
            reply = self._dispatch(decode_message(item))
        except DecodeError as exc:
            reply = ErrorReply(ErrorCode.BAD_PAYLOAD, exc.field[:64])
        except Refused as exc:
            reply = ErrorReply(exc.code, exc.detail[:64])
        if self.faults.reply_delay_s:
            await asyncio.sleep(self.faults.reply_delay_s)
        raw = self._reply(item.seq, reply)
        self._replies[item.seq] = (*fingerprint, raw)
        self._replies.move_to_end(item.seq)
        while len(self._replies) > REPLY_CACHE:
            self._replies.popitem(last=False)

    def _reply(self, seq: int, reply: Message) -> bytes:
        if isinstance(reply, ErrorReply):
            self.stats.errors_sent += 1
        raw = encode_message(seq, reply)
        self._send(raw)
        return raw

    def _damaged(self, error: FrameError) -> None:
        try:
            mtype = MessageType(error.type)
        except ValueError:
            return
        if not mtype.is_request:
            return  # a damaged ACK: the notification is retransmitted on timeout
        if error.kind is FrameErrorKind.BAD_LENGTH:
            self._reply(error.seq, ErrorReply(ErrorCode.BAD_LENGTH, "length"))
            return
        code = ErrorCode.BAD_CRC if error.kind is FrameErrorKind.BAD_CRC else ErrorCode.TRUNCATED
        assert code in NAK_CODES
        self.stats.naks_sent += 1
        self._send(encode_message(error.seq, Nak(code)))

    # ------------------------------------------------------------------ requests

    def _dispatch(self, message: Message) -> Message:
        if isinstance(message, Hello):
            return self._hello(message)
        if isinstance(message, KeyInfo):
            key = self._require_key()
            return KeyInfoReply(
                key.serial,
                bytes.fromhex(key.image.revision),
                key.checksum,
                len(key.encoded),
                min(len(key.audit), 0xFFFF),
            )
        if isinstance(message, ReadKey):
            return self._read_key(message)
        if isinstance(message, WriteBegin):
            return self._write_begin(message)
        if isinstance(message, WriteChunk):
            return self._write_chunk(message)
        if isinstance(message, WriteCommit):
            return self._write_commit(message)
        if isinstance(message, WriteAbort):
            self._staging = None
            self._interrupted = False
            return Ack()
        if isinstance(message, ReadAudit):
            return self._read_audit(message)
        if isinstance(message, ClearAudit):
            self._require(Capability.AUDIT, "audit")
            key = self._require_key()
            head = [_audit_entry(r) for r in itertools.islice(key.audit, message.count)]
            if len(head) < message.count or audit_digest(head) != message.digest:
                raise Refused(ErrorCode.AUDIT_CHANGED, "digest")
            erased = key.clear_audit(message.count)
            return AuditCleared(erased, len(key.audit))
        raise Refused(ErrorCode.UNKNOWN_TYPE, "type")

    def _require_key(self) -> VirtualKey:
        if self.key is None:
            raise Refused(ErrorCode.NO_KEY)
        return self.key

    def _require(self, capability: Capability, name: str) -> None:
        if not self.config.capabilities & capability:
            raise Refused(ErrorCode.UNSUPPORTED, name)

    def _hello(self, message: Hello) -> Message:
        if not 1 <= message.version <= self.config.protocol_version:
            raise Refused(ErrorCode.BAD_VERSION, "version")
        self._version = message.version
        self._replies.clear()
        self._staging = None
        self._interrupted = False
        while not self._notes.empty():
            self._notes.get_nowait()
        for acks in self._acks.values():
            acks.put_nowait(True)  # the reply tells the key state; stop repeating
        c = self.config
        return HelloReply(
            version=message.version,
            mounting=c.mounting,
            capabilities=int(c.capabilities),
            max_access_entries=c.max_access_entries,
            max_payload=c.max_payload,
            window=c.window,
            station_id=c.station_id,
            firmware=c.firmware,
            key_serial=self.key.serial if self.key else "",
        )

    def _read_key(self, message: ReadKey) -> Message:
        key = self._require_key()
        total = len(key.encoded)
        if message.offset >= total:
            raise Refused(ErrorCode.BAD_OFFSET, "offset")
        length = min(message.length, self.config.max_payload - 12, total - message.offset)
        data = key.encoded[message.offset : message.offset + length]
        return KeyData(key.checksum, total, message.offset, data)

    def _write_begin(self, message: WriteBegin) -> Message:
        key = self._require_key()
        self._staging = None
        self._interrupted = False
        if message.mode is WriteMode.DELTA:
            self._require(Capability.DELTA, "delta")
            if message.base_checksum != key.checksum:
                raise Refused(ErrorCode.STALE_DELTA_BASE, "base_checksum")
        if message.length > self.config.max_image_bytes:
            raise Refused(ErrorCode.CAPACITY_EXCEEDED, "length")
        self._staging = _Staging(key, message, bytearray(message.length), bytearray(message.length))
        return Ack()

    def _staged(self) -> _Staging:
        if self._staging is None:
            if self._interrupted:
                raise Refused(ErrorCode.KEY_REMOVED)
            raise Refused(ErrorCode.NO_WRITE)
        return self._staging

    def _fault_after_chunks(self, staging: _Staging, *, commit: bool = False) -> None:
        pull = self.faults.pull_key_after_chunks
        if pull is not None and (commit or staging.chunks >= pull):
            self.faults.pull_key_after_chunks = None
            self.remove()
            raise Refused(ErrorCode.KEY_REMOVED)
        cut = self.faults.disconnect_after_chunks
        if cut is not None and (commit or staging.chunks >= cut):
            self.faults.disconnect_after_chunks = None
            raise _Disconnect()

    def _write_chunk(self, message: WriteChunk) -> Message:
        staging = self._staged()
        self._fault_after_chunks(staging)
        end = message.offset + len(message.data)
        if end > len(staging.buffer):
            raise Refused(ErrorCode.BAD_OFFSET, "offset")
        staging.buffer[message.offset : end] = message.data
        staging.covered[message.offset : end] = b"\x01" * len(message.data)
        staging.chunks += 1
        return Ack()

    def _write_commit(self, message: WriteCommit) -> Message:
        staging = self._staged()
        self._fault_after_chunks(staging, commit=True)
        key = staging.key
        begin = staging.begin
        if message.checksum != begin.checksum:
            raise Refused(ErrorCode.CHECKSUM_MISMATCH, "checksum")
        if staging.covered.count(0):
            raise Refused(ErrorCode.INCOMPLETE, "length")
        self._staging = None  # from here on the commit ends the write, whatever its answer
        data = bytes(staging.buffer)
        try:
            if begin.mode is WriteMode.DELTA:
                if key.checksum != begin.base_checksum:
                    raise Refused(ErrorCode.STALE_DELTA_BASE, "base_checksum")
                # format 2 (compact) only in a version 2 session: it needs the base
                compact_base = key.image if self._version >= 2 else None
                image = apply_delta(key.image, decode_delta(data, compact_base))
                encoded = encode_image(image)
            else:
                if image_checksum(data) != begin.checksum:
                    raise Refused(ErrorCode.CHECKSUM_MISMATCH, "checksum")
                image = decode_image(data)
                encoded = data
        except DecodeError as exc:
            raise Refused(ErrorCode.BAD_IMAGE, exc.field) from None
        if image_checksum(encoded) != begin.checksum:
            raise Refused(ErrorCode.CHECKSUM_MISMATCH, "checksum")
        if image.serial != key.serial:
            raise Refused(ErrorCode.WRONG_KEY, "serial")
        if image.blacklists:
            self._require(Capability.BLACKLIST, "blacklist")
        if image.revalidate_by is not None:
            self._require(Capability.REVALIDATION, "revalidation")
        if len(image.access) > self.config.max_access_entries:
            raise Refused(ErrorCode.CAPACITY_EXCEEDED, "access")
        # a full image was decoded from exactly these bytes: no need to decode it again
        key.store(encoded, None if begin.mode is WriteMode.DELTA else image)
        self.stats.commits += 1
        return Ack()

    def _read_audit(self, message: ReadAudit) -> Message:
        self._require(Capability.AUDIT, "audit")
        key = self._require_key()
        records = list(key.audit)
        if message.index > len(records):
            raise Refused(ErrorCode.AUDIT_RANGE, "index")
        room = self.config.max_payload - 5
        out: list[AuditEntry] = []
        for record in records[message.index : message.index + message.max_records]:
            size = AuditEntry.size(record.key_serial)
            if size > room:
                break
            room -= size
            out.append(_audit_entry(record))
        return AuditData(min(len(records), 0xFFFF), message.index, tuple(out))


def _audit_entry(record: KeyAuditRecord) -> AuditEntry:
    """A key's audit record as AUDIT_DATA carries it."""
    return AuditEntry(
        sequence=record.sequence,
        at=instant_to_wire(record.at, "at"),
        cylinder=record.cylinder,
        outcome=AuditOutcomeCode[record.outcome.name],
        reason=AuditReason[record.reason] if record.reason else AuditReason.NONE,
        source=AuditSource[record.source.upper()],
        blacklist_version=record.blacklist_version,
        key_serial=record.key_serial,
    )

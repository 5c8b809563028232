"""``SerialKeyStation``: the :class:`~drivers.base.KeyStation` contract over the serial
key-station protocol (``docs/protocols/key-station.md``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Self, TypeVar

import serial

from drivers.base import (
    AuditOutcome,
    DeviceUnavailable,
    DriverError,
    KeyAuditRecord,
    KeyEvent,
    KeyEventKind,
    KeyImage,
    KeyRemoved,
    KeyStation,
    NoKeyInserted,
    ProgressCallback,
    ProtocolError,
    StationCapability,
    StationInfo,
    StationMounting,
    VerifyMismatch,
    WriteProgress,
    WriteResult,
)
from drivers.serialstation.codes import (
    PROTOCOL_VERSION,
    PROTOCOL_VERSIONS,
    AuditOutcomeCode,
    AuditReason,
    AuditSource,
    Capability,
    ErrorCode,
    Mounting,
    WriteMode,
)
from drivers.serialstation.image import (
    canonical,
    decode_image,
    diff,
    encode_image,
    image_checksum,
)
from drivers.serialstation.link import HostLink, StationRefused
from drivers.serialstation.messages import (
    MAX_WINDOW,
    Ack,
    AuditCleared,
    AuditData,
    AuditEntry,
    ClearAudit,
    Hello,
    HelloReply,
    KeyData,
    KeyInfo,
    KeyInfoReply,
    KeyInsertedNotice,
    KeyRemovedNotice,
    Message,
    ReadAudit,
    ReadKey,
    WriteAbort,
    WriteBegin,
    WriteChunk,
    WriteCommit,
    audit_digest,
)
from drivers.serialstation.transport import FdTransport, open_serial
from drivers.serialstation.wire import DecodeError, instant_from_wire

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
A = TypeVar("A")
B = TypeVar("B")

DEFAULT_BAUDRATE: Final = 115200
DEFAULT_TIMEOUT_S: Final = 1.0
DEFAULT_RETRIES: Final = 3
DELTA_MAX_FRACTION: Final = 0.5
"""A delta is sent only when it is smaller than this fraction of the full image."""
COMPACT_DELTA_VERSION: Final = 2
"""From this protocol version on, deltas are sent in the compact format 2."""
BASE_MEMORY: Final = 64
"""How many keys' last-known images are remembered as delta bases."""

_CAPABILITIES = {
    Capability.DELTA: StationCapability.DELTA,
    Capability.AUDIT: StationCapability.AUDIT,
    Capability.BLACKLIST: StationCapability.BLACKLIST,
    Capability.REVALIDATION: StationCapability.REVALIDATION,
}
_OUTCOMES = {
    AuditOutcomeCode.GRANTED: AuditOutcome.GRANTED,
    AuditOutcomeCode.DENIED: AuditOutcome.DENIED,
    AuditOutcomeCode.BLACKLIST_APPLIED: AuditOutcome.BLACKLIST_APPLIED,
}
_OPTIONS = frozenset({"device_id", "port", "baudrate", "timeout_s", "retries"})


class _Restage(Exception):
    """The station did not take pipelined chunks into the write: stage it again."""


class _Closed:
    """End-of-stream marker of the events queue."""


_CLOSED: Final = _Closed()


@dataclass(frozen=True, slots=True)
class _Base:
    checksum: int
    image: KeyImage


def _now() -> datetime:
    return datetime.now(UTC)


class SerialKeyStation(KeyStation):
    """A key programming station on a serial line (or any pyserial URL with a file
    descriptor, e.g. ``socket://host:port``).

    Options (``from_options``): ``port`` (required), ``device_id``, ``baudrate`` (115200),
    ``timeout_s`` (1.0: reply time allowed on top of the time the bytes need on the line),
    ``retries`` (3 retransmissions per frame).

    ``open`` offers protocol version 2 and falls back to version 1 when the station refuses
    it. ``write_key`` sends a delta (format 2 on version 2) against the image last read from
    (or written to) the same key when the station has the ``delta`` capability and the
    delta is less than half the size of the full image; when the key no longer holds that
    image (the station refuses the base) or otherwise, the full image. Both end with a
    read-back of revision and checksum. ``clear_audit(n)`` erases the first ``n``
    records of the trail as ``read_audit`` returned them, naming them by their digest so
    that the station erases nothing when its trail no longer starts with them; on a station
    without the ``audit`` capability ``read_audit`` returns an empty list and
    ``clear_audit`` does nothing.
    """

    def __init__(
        self,
        *,
        port: str,
        device_id: str = "serial-station",
        baudrate: int = DEFAULT_BAUDRATE,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        self.device_id = device_id
        self.port = port
        self.baudrate = baudrate
        self.timeout_s = timeout_s
        self.retries = retries
        self._info: StationInfo | None = None
        self._link: HostLink | None = None
        self._transport: FdTransport | None = None
        self._events: asyncio.Queue[KeyEvent | DriverError | _Closed] = asyncio.Queue()
        self._ready = False
        self._lock = asyncio.Lock()
        self._bases: OrderedDict[str, _Base] = OrderedDict()
        self._audit_read: dict[str, list[AuditEntry]] = {}
        """Per key, the trail as last read and not yet erased: what clear_audit names."""

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown option (known: {', '.join(sorted(_OPTIONS))})")
        port = options.get("port")
        if not isinstance(port, str) or not port.strip():
            raise ValueError("port: required, a device path or a pyserial URL")
        device_id = options.get("device_id", "serial-station")
        if not isinstance(device_id, str) or not device_id:
            raise ValueError("device_id: must be a non-empty string")
        baudrate = options.get("baudrate", DEFAULT_BAUDRATE)
        if isinstance(baudrate, bool) or not isinstance(baudrate, int):
            raise ValueError("baudrate: must be an integer")
        if not 300 <= baudrate <= 4_000_000:
            raise ValueError(f"baudrate: {baudrate} is outside 300..4000000")
        timeout_s = options.get("timeout_s", DEFAULT_TIMEOUT_S)
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float):
            raise ValueError("timeout_s: must be a number of seconds")
        if not (math.isfinite(timeout_s) and 0 < timeout_s <= 60):
            raise ValueError(f"timeout_s: {timeout_s} is outside (0, 60]")
        retries = options.get("retries", DEFAULT_RETRIES)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
            raise ValueError(f"retries: must be an integer 0..10, not {retries!r}")
        return cls(
            port=port.strip(),
            device_id=device_id,
            baudrate=baudrate,
            timeout_s=float(timeout_s),
            retries=retries,
        )

    # ------------------------------------------------------------------ life cycle

    @property
    def info(self) -> StationInfo:
        if self._info is None:
            raise DeviceUnavailable("station is not open", device_id=self.device_id)
        return self._info

    async def open(self) -> None:
        """Open the port and say HELLO. Does nothing when already open; after the link was
        lost, reconnects."""
        if self._link is not None:
            if not self._link.failed:
                return
            await self.close()
        self._events = asyncio.Queue()
        self._ready = False
        link = HostLink(
            device_id=self.device_id,
            baudrate=self.baudrate,
            timeout_s=self.timeout_s,
            retries=self.retries,
            on_notification=self._on_notification,
            on_lost=self._on_lost,
        )
        try:
            transport = open_serial(
                self.port,
                baudrate=self.baudrate,
                on_data=link.data_received,
                on_lost=link.connection_lost,
            )
        except (OSError, ValueError, serial.SerialException) as exc:
            raise DeviceUnavailable(
                f"cannot open {self.port}: {exc}", device_id=self.device_id
            ) from exc
        link.attach(transport)
        self._link, self._transport = link, transport
        try:
            hello = await self._hello(link)
            self._info = self._station_info(hello)
        except BaseException:
            await self.close()
            raise
        link.configure(max_payload=hello.max_payload, window=min(hello.window, MAX_WINDOW))
        link.reset_session()
        self._ready = True
        if hello.key_serial:
            self._events.put_nowait(KeyEvent(KeyEventKind.INSERTED, hello.key_serial, _now()))

    async def _hello(self, link: HostLink) -> HelloReply:
        """Offer the versions this driver speaks, highest first, until one is accepted."""
        versions = [v for v in PROTOCOL_VERSIONS if v <= PROTOCOL_VERSION]
        for index, version in enumerate(versions):
            try:
                hello = await link.request(Hello(version), HelloReply)
            except StationRefused as exc:
                if exc.code is ErrorCode.BAD_VERSION and index + 1 < len(versions):
                    continue
                if exc.code is ErrorCode.BAD_VERSION:
                    raise ProtocolError(
                        f"station speaks none of protocol versions {', '.join(map(str, versions))}",
                        device_id=self.device_id,
                        field="version",
                    ) from None
                raise self._refusal(exc) from None
            if hello.version != version:
                raise ProtocolError(
                    f"station answered HELLO version {version} with version {hello.version}",
                    device_id=self.device_id,
                    field="version",
                )
            return hello
        raise AssertionError("unreachable: PROTOCOL_VERSIONS is not empty")

    def _station_info(self, hello: HelloReply) -> StationInfo:
        caps = frozenset(v for bit, v in _CAPABILITIES.items() if hello.capabilities & bit)
        mounting = StationMounting.WALL if hello.mounting is Mounting.WALL else StationMounting.DESK
        return StationInfo(
            station_id=hello.station_id,
            protocol_version=hello.version,
            mounting=mounting,
            capabilities=caps,
            max_access_entries=hello.max_access_entries,
            max_frame_payload=hello.max_payload,
            firmware=hello.firmware,
        )

    async def close(self) -> None:
        link, self._link = self._link, None
        self._transport = None
        self._ready = False
        if link is not None:
            link.close()
            self._events.put_nowait(_CLOSED)

    # ------------------------------------------------------------------ events

    async def events(self) -> AsyncIterator[KeyEvent]:
        queue = self._events
        while True:
            item = await queue.get()
            if isinstance(item, _Closed):
                return
            if isinstance(item, DriverError):
                raise item
            yield item

    def _on_notification(self, message: Message) -> None:
        if not self._ready:
            return  # HELLO_REPLY is authoritative for what happened before it
        if isinstance(message, KeyInsertedNotice):
            kind, serial_no = KeyEventKind.INSERTED, message.serial
        elif isinstance(message, KeyRemovedNotice):
            kind, serial_no = KeyEventKind.REMOVED, message.serial
        else:
            return
        self._audit_read.pop(serial_no, None)
        self._events.put_nowait(KeyEvent(kind, serial_no, _now()))

    def _on_lost(self, error: DriverError) -> None:
        self._events.put_nowait(error)

    # ------------------------------------------------------------------ plumbing

    def _require_link(self) -> HostLink:
        if self._link is None:
            raise DeviceUnavailable("station is not open", device_id=self.device_id)
        return self._link

    async def _call(self, message: Message, expect: type[M]) -> M:
        link = self._require_link()
        try:
            return await link.request(message, expect)
        except StationRefused as exc:
            raise self._refusal(exc) from None

    def _refusal(self, exc: StationRefused) -> DriverError:
        text = f"station refused: {exc}"
        if exc.code is ErrorCode.NO_KEY:
            return NoKeyInserted(text, device_id=self.device_id)
        if exc.code in (ErrorCode.KEY_REMOVED, ErrorCode.WRONG_KEY):
            return KeyRemoved(text, device_id=self.device_id)
        if exc.code in (ErrorCode.CHECKSUM_MISMATCH, ErrorCode.AUDIT_CHANGED):
            return VerifyMismatch(text, device_id=self.device_id)
        return ProtocolError(text, device_id=self.device_id, field=exc.detail or exc.code.name)

    def _protocol_error(self, message: str, field: str) -> ProtocolError:
        return ProtocolError(message, device_id=self.device_id, field=field)

    async def _key_info(self) -> KeyInfoReply:
        return await self._call(KeyInfo(), KeyInfoReply)

    def _remember(self, serial_no: str, checksum: int, image: KeyImage) -> None:
        self._bases[serial_no] = _Base(checksum, image)
        self._bases.move_to_end(serial_no)
        while len(self._bases) > BASE_MEMORY:
            self._bases.popitem(last=False)

    # ------------------------------------------------------------------ read

    async def read_key(self) -> KeyImage:
        async with self._lock:
            link = self._require_link()
            info = await self._key_info()
            size = link.max_payload - 12
            requests = [
                ReadKey(offset, min(size, info.length - offset))
                for offset in range(0, info.length, size)
            ]
            replies = await self._pipeline(requests, KeyData)
            for req, reply in zip(requests, replies, strict=True):
                if reply.checksum != info.checksum or reply.total != info.length:
                    raise KeyRemoved(
                        f"the image of key {info.serial} changed while it was read",
                        device_id=self.device_id,
                    )
                if reply.offset != req.offset or len(reply.data) != req.length:
                    raise self._protocol_error(
                        f"KEY_DATA answered offset {reply.offset}+{len(reply.data)} to a read "
                        f"of {req.offset}+{req.length}",
                        "offset",
                    )
            data = b"".join(r.data for r in replies)
            if image_checksum(data) != info.checksum:
                raise self._protocol_error("image does not match its checksum", "checksum")
            try:
                image = decode_image(data)
            except DecodeError as exc:
                raise self._protocol_error(f"image: {exc}", f"image.{exc.field}") from None
            if image.serial != info.serial or image.revision != info.revision.hex():
                raise self._protocol_error("image does not match KEY_INFO", "serial")
            self._remember(info.serial, info.checksum, image)
            return image

    async def _pipeline(
        self,
        messages: Sequence[Message],
        expect: type[M],
        on_reply: Callable[[int, M], None] | None = None,
    ) -> list[M]:
        link = self._require_link()
        try:
            return await link.pipeline(messages, expect, on_reply)
        except StationRefused as exc:
            raise self._refusal(exc) from None

    # ------------------------------------------------------------------ write

    def _check_fits(self, image: KeyImage) -> None:
        info = self.info
        caps = info.capabilities
        if image.blacklists and StationCapability.BLACKLIST not in caps:
            raise ValueError(f"blacklists: station {info.station_id} cannot carry blacklists")
        if image.revalidate_by is not None and StationCapability.REVALIDATION not in caps:
            raise ValueError(
                f"revalidate_by: station {info.station_id} does not support revalidation"
            )
        if len(image.access) > info.max_access_entries:
            raise ValueError(
                f"access: {len(image.access)} entries exceed the station's maximum of "
                f"{info.max_access_entries}"
            )

    async def write_key(
        self, image: KeyImage, *, progress: ProgressCallback | None = None
    ) -> WriteResult:
        target = encode_image(image)
        checksum = image_checksum(target)
        async with self._lock:
            link = self._require_link()
            self._check_fits(image)
            loop = asyncio.get_running_loop()
            started = loop.time()
            bytes0, frames0 = link.stats.bytes_sent, link.stats.frames_sent
            delta, base_checksum = self._delta_for(image, len(target))
            used_delta = False
            after: KeyInfoReply | None = None
            if delta is not None:
                try:
                    after = await self._transfer(
                        WriteMode.DELTA, delta, checksum, base_checksum, progress, None
                    )
                    used_delta = True
                except ProtocolError as exc:
                    if exc.field != "base_checksum":
                        raise
                    log.info("%s: delta base is stale, writing the full image", self.device_id)
                    self._bases.pop(image.serial, None)
            if after is None:
                after = await self._transfer(
                    WriteMode.FULL, target, checksum, 0, progress, image.serial
                )
            if after.serial != image.serial:
                raise KeyRemoved(f"key {image.serial} was removed", device_id=self.device_id)
            if after.checksum != checksum or after.revision.hex() != image.revision.lower():
                raise VerifyMismatch(
                    f"key {image.serial} holds revision {after.revision.hex()} checksum "
                    f"{after.checksum:08x} after writing revision {image.revision.lower()} "
                    f"checksum {checksum:08x}",
                    device_id=self.device_id,
                )
            self._remember(image.serial, checksum, canonical(image))
            return WriteResult(
                revision=after.revision.hex(),
                bytes_sent=link.stats.bytes_sent - bytes0,
                frames_sent=link.stats.frames_sent - frames0,
                delta=used_delta,
                seconds=loop.time() - started,
            )

    def _delta_for(self, image: KeyImage, full_size: int) -> tuple[bytes | None, int]:
        """The delta against the image this driver last read from or wrote to the key, and
        that image's checksum. Whether the key still holds it is checked by the station
        (WRITE_BEGIN refuses a stale base at once), so no KEY_INFO round trip is needed."""
        if StationCapability.DELTA not in self.info.capabilities:
            return None, 0
        base = self._bases.get(image.serial)
        if base is None:
            return None, 0
        compact = self.info.protocol_version >= COMPACT_DELTA_VERSION
        delta = diff(base.image, image).encode(base=base.image if compact else None)
        if len(delta) >= full_size * DELTA_MAX_FRACTION:
            return None, 0
        return delta, base.checksum

    async def _together(self, coros: Sequence[Coroutine[Any, Any, Any]], name: str) -> list[Any]:
        """Run requests concurrently, sent in the order given (the link keeps them within
        the station's window, the station answers in arrival order) and wait for all of
        them. When several fail, the error of the first in order is raised."""
        prefix = f"serialstation:{self.device_id}:{name}"
        tasks = [asyncio.create_task(c, name=f"{prefix}-{i}") for i, c in enumerate(coros)]
        try:
            await asyncio.wait(tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if (exc := task.exception()) is not None:
                raise exc
        return [task.result() for task in tasks]

    async def _transfer(
        self,
        mode: WriteMode,
        data: bytes,
        checksum: int,
        base_checksum: int,
        progress: ProgressCallback | None,
        check_serial: str | None,
    ) -> KeyInfoReply:
        """Stage ``data``, commit it and read back what the key holds.

        WRITE_BEGIN and the chunks are sent back to back, without waiting for the begin's
        ACK (the station handles requests in arrival order). With ``check_serial``,
        KEY_INFO goes first and the write is abandoned before its commit unless that key is
        in the station. When the station did not take the chunks into the write (the
        begin was damaged and retransmitted after them: a chunk is refused with
        NO_WRITE/BAD_OFFSET or the commit with INCOMPLETE), the write is staged once more,
        this time waiting for the begin's ACK. The read-back KEY_INFO is sent right behind
        WRITE_COMMIT; one that does not show the new checksum (it may have overtaken a
        retransmitted commit) is repeated after the commit's ACK."""
        link = self._require_link()
        begin = WriteBegin(mode, len(data), checksum, base_checksum)
        size = link.max_payload - 4
        chunks: list[Message] = [
            WriteChunk(offset, data[offset : offset + size]) for offset in range(0, len(data), size)
        ]
        done = 0

        def acked(index: int, _: Ack) -> None:
            nonlocal done
            chunk = chunks[index]
            assert isinstance(chunk, WriteChunk)
            done += len(chunk.data)
            if progress is not None:
                try:
                    progress(WriteProgress(done, len(data)))
                except Exception:
                    log.exception("%s: progress callback failed", self.device_id)

        async def stage(pipelined: bool) -> KeyInfoReply | None:
            coros: list[Coroutine[Any, Any, Any]] = []
            if check_serial is not None:
                coros.append(link.request(KeyInfo(), KeyInfoReply))
            coros.append(link.request(begin, Ack))
            if pipelined:
                coros.append(link.pipeline(chunks, Ack, acked))
            results = await self._together(coros, "stage")
            if not pipelined:
                await link.pipeline(chunks, Ack, acked)
            return results[0] if check_serial is not None else None

        pipelined = link.window >= 2
        for _ in range(2):
            try:
                try:
                    info = await stage(pipelined)
                except StationRefused as exc:
                    if pipelined and exc.code in (ErrorCode.NO_WRITE, ErrorCode.BAD_OFFSET):
                        raise _Restage from None
                    raise
                if info is not None and info.serial != check_serial:
                    with contextlib.suppress(DriverError, StationRefused):
                        await link.request(WriteAbort(), Ack)
                    raise KeyRemoved(
                        f"image is for key {check_serial}, but key {info.serial} is in the station",
                        device_id=self.device_id,
                    )
                try:
                    _, after = await self._together(
                        [
                            link.request(WriteCommit(checksum), Ack),
                            link.request(KeyInfo(), KeyInfoReply),
                        ],
                        "commit",
                    )
                except StationRefused as exc:
                    if pipelined and exc.code is ErrorCode.INCOMPLETE:
                        raise _Restage from None
                    raise
            except _Restage:
                log.info(
                    "%s: chunks overtook a retransmitted WRITE_BEGIN, staging again", self.device_id
                )
                pipelined = False
                done = 0
                continue
            except StationRefused as exc:
                if exc.code is ErrorCode.STALE_DELTA_BASE:
                    raise self._protocol_error(str(exc), "base_checksum") from None
                raise self._refusal(exc) from None
            assert isinstance(after, KeyInfoReply)
            if after.checksum != checksum:
                after = await self._key_info()
            return after
        raise AssertionError("unreachable: the second staging does not pipeline")

    # ------------------------------------------------------------------ audit

    async def read_audit(self) -> list[KeyAuditRecord]:
        async with self._lock:
            if StationCapability.AUDIT not in self.info.capabilities:
                return []
            info = await self._key_info()
            entries = await self._read_trail()
            self._audit_read[info.serial] = entries
            return [self._record(e, i) for i, e in enumerate(entries)]

    async def _read_trail(self) -> list[AuditEntry]:
        entries: list[AuditEntry] = []
        total: int | None = None
        while total is None or len(entries) < total:
            reply = await self._call(ReadAudit(len(entries), 255), AuditData)
            if total is None:
                total = reply.total
            elif reply.total != total:
                raise KeyRemoved(
                    "the audit trail changed while it was read", device_id=self.device_id
                )
            if reply.index != len(entries) or (not reply.records and len(entries) < total):
                raise self._protocol_error(
                    f"AUDIT_DATA answered index {reply.index} with {len(reply.records)} "
                    f"records to a read at {len(entries)}",
                    "index",
                )
            entries += reply.records
        return entries

    def _record(self, entry: AuditEntry, index: int) -> KeyAuditRecord:
        if entry.outcome is AuditOutcomeCode.DENIED and entry.reason is AuditReason.NONE:
            raise self._protocol_error("a denied record needs a reason", f"records[{index}].reason")
        return KeyAuditRecord(
            sequence=entry.sequence,
            at=instant_from_wire(entry.at),
            cylinder=entry.cylinder,
            key_serial=entry.key_serial,
            outcome=_OUTCOMES[entry.outcome],
            reason="" if entry.reason is AuditReason.NONE else entry.reason.name,
            blacklist_version=entry.blacklist_version,
            source="cylinder" if entry.source is AuditSource.CYLINDER else "key",
        )

    async def clear_audit(self, count: int) -> None:
        if isinstance(count, bool) or not isinstance(count, int):
            raise ValueError("count: must be an integer")
        if count < 0:
            raise ValueError(f"count: {count} is negative")
        async with self._lock:
            if StationCapability.AUDIT not in self.info.capabilities:
                return
            info = await self._key_info()
            read = self._audit_read.get(info.serial)
            if read is None:
                raise ValueError(f"count: the audit trail of key {info.serial} was not read")
            if count > len(read):
                raise ValueError(
                    f"count: {count} records, but {len(read)} were read from key {info.serial}"
                )
            if count == 0:
                return
            head = read[:count]
            reply = await self._call(ClearAudit(count, audit_digest(head)), AuditCleared)
            if reply.erased != count:
                raise self._protocol_error(
                    f"AUDIT_CLEARED says {reply.erased} records were erased, asked {count}",
                    "erased",
                )
            self._audit_read[info.serial] = read[count:]

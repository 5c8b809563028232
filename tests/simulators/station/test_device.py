"""The station's side of the protocol, frame by frame over a real pty."""

from __future__ import annotations

import asyncio
import zlib

import pytest

from drivers.base import AuditOutcome, KeyAuditRecord
from drivers.serialstation import messages as m
from drivers.serialstation.codes import ErrorCode, MessageType, WriteMode
from drivers.serialstation.frames import FrameError, FrameErrorKind, encode_frame
from drivers.serialstation.image import encode_image
from simulators.station import SimWorld, StationConfig, StationSimulator

from .conftest import RawHost
from .test_cylinder import NOW, image


async def hello(host: RawHost) -> m.HelloReply:
    reply = await host.call(0, m.Hello(1))
    assert isinstance(reply, m.HelloReply)
    return reply


async def test_hello_and_key_state(sim: StationSimulator, host: RawHost) -> None:
    reply = await hello(host)
    assert (reply.station_id, reply.key_serial, reply.window) == ("raw-1", "", 8)
    sim.device.insert("100000001")
    assert (await hello(host)).key_serial == "100000001"


async def test_wrong_version_is_refused(host: RawHost) -> None:
    reply = await host.call(0, m.Hello(9))
    assert reply == m.ErrorReply(ErrorCode.BAD_VERSION, "version")


async def test_notifications_are_repeated_until_acknowledged(
    sim: StationSimulator, host: RawHost
) -> None:
    await hello(host)
    sim.device.insert("100000001")
    seq1, first = await host.note()
    seq2, again = await host.note(within=1.0)
    assert first == again == m.KeyInsertedNotice("100000001")
    assert seq1 == seq2
    host.send(seq2, m.Ack())
    sim.device.remove()
    seq3, removed = await host.note()
    assert removed == m.KeyRemovedNotice("100000001")
    assert seq3 == (seq1 + 1) & 0xFF
    host.send(seq3, m.Ack())
    with pytest.raises(TimeoutError):
        await host.note(within=0.4)
    assert sim.device.stats.notifications_unacked == 0


async def test_damaged_request_is_nakked_and_unknown_type_refused(host: RawHost) -> None:
    raw = bytearray(encode_frame(5, MessageType.KEY_INFO, b""))
    raw[-1] ^= 0xFF
    host.send_raw(bytes(raw))
    assert await host.message() == (5, m.Nak(ErrorCode.BAD_CRC))
    host.send_raw(encode_frame(6, 0x3E, b""))
    assert await host.message() == (6, m.ErrorReply(ErrorCode.UNKNOWN_TYPE, "type"))
    host.send_raw(encode_frame(7, MessageType.READ_KEY, b"\x00"))
    _, reply = await host.message()
    assert reply == m.ErrorReply(ErrorCode.BAD_PAYLOAD, "offset")


async def test_truncated_request_is_nakked_after_the_line_goes_quiet(host: RawHost) -> None:
    host.send_raw(encode_frame(9, MessageType.READ_KEY, bytes(6))[:10])
    assert await host.message() == (9, m.Nak(ErrorCode.TRUNCATED))


async def test_oversized_frame_is_refused(host: RawHost) -> None:
    host.send_raw(encode_frame(3, MessageType.WRITE_CHUNK, bytes(300)))
    assert await host.message() == (3, m.ErrorReply(ErrorCode.BAD_LENGTH, "length"))


async def test_no_key_and_write_without_begin(sim: StationSimulator, host: RawHost) -> None:
    assert await host.call(1, m.KeyInfo()) == m.ErrorReply(ErrorCode.NO_KEY)
    sim.device.insert("100000001")
    assert await host.call(2, m.WriteChunk(0, b"x")) == m.ErrorReply(ErrorCode.NO_WRITE)
    assert await host.call(3, m.WriteCommit(0)) == m.ErrorReply(ErrorCode.NO_WRITE)


async def write_full(host: RawHost, data: bytes, first_seq: int = 10) -> list[m.Message]:
    checksum = zlib.crc32(data)
    replies = [await host.call(first_seq, m.WriteBegin(WriteMode.FULL, len(data), checksum))]
    replies.append(await host.call(first_seq + 1, m.WriteChunk(0, data)))
    replies.append(await host.call(first_seq + 2, m.WriteCommit(checksum)))
    return replies


async def test_commit_checks_completeness_and_checksum(
    sim: StationSimulator, host: RawHost
) -> None:
    sim.device.insert("100000001")
    await hello(host)
    key = sim.world.registry.get("100000001")
    data = encode_image(image())
    crc = zlib.crc32(data)
    assert await host.call(1, m.WriteBegin(WriteMode.FULL, len(data), crc)) == m.Ack()
    assert await host.call(2, m.WriteChunk(0, data[:50])) == m.Ack()
    assert await host.call(3, m.WriteCommit(crc)) == m.ErrorReply(ErrorCode.INCOMPLETE, "length")
    assert await host.call(4, m.WriteChunk(len(data) - 1, b"xx")) == m.ErrorReply(
        ErrorCode.BAD_OFFSET, "offset"
    )
    assert await host.call(5, m.WriteChunk(50, data[50:])) == m.Ack()
    assert await host.call(6, m.WriteCommit(crc ^ 1)) == m.ErrorReply(
        ErrorCode.CHECKSUM_MISMATCH, "checksum"
    )
    assert key.image.revision == "0" * 16
    assert await host.call(7, m.WriteCommit(crc)) == m.Ack()
    assert key.image.revision == "00000000000000aa"
    # a commit that got as far as building the image ends the write, successful or not
    assert await host.call(8, m.WriteCommit(crc)) == m.ErrorReply(ErrorCode.NO_WRITE, "")
    bad = data[:-1] + bytes([data[-1] ^ 1])
    assert await host.call(9, m.WriteBegin(WriteMode.FULL, len(bad), crc)) == m.Ack()
    assert await host.call(10, m.WriteChunk(0, bad)) == m.Ack()
    assert await host.call(11, m.WriteCommit(crc)) == m.ErrorReply(
        ErrorCode.CHECKSUM_MISMATCH, "checksum"
    )
    assert await host.call(12, m.WriteCommit(crc)) == m.ErrorReply(ErrorCode.NO_WRITE, "")
    assert await host.call(13, m.WriteChunk(0, data)) == m.ErrorReply(ErrorCode.NO_WRITE, "")


async def test_key_removed_is_sticky_until_a_new_write(
    sim: StationSimulator, host: RawHost
) -> None:
    sim.device.insert("100000001")
    await hello(host)
    data = encode_image(image())
    crc = zlib.crc32(data)
    assert await host.call(1, m.WriteBegin(WriteMode.FULL, len(data), crc)) == m.Ack()
    sim.device.remove()
    removed = m.ErrorReply(ErrorCode.KEY_REMOVED, "")
    assert await host.call(2, m.WriteChunk(0, data)) == removed
    assert await host.call(3, m.WriteCommit(crc)) == removed
    assert await host.call(4, m.KeyInfo()) == m.ErrorReply(ErrorCode.NO_KEY, "")
    assert await host.call(5, m.WriteCommit(crc)) == removed
    assert await host.call(6, m.WriteAbort()) == m.Ack()
    assert await host.call(7, m.WriteCommit(crc)) == m.ErrorReply(ErrorCode.NO_WRITE, "")


async def test_reads_past_the_image_end(sim: StationSimulator, host: RawHost) -> None:
    sim.device.insert("100000001")
    await hello(host)
    key = sim.world.registry.get("100000001")
    total = len(key.encoded)
    tail = await host.call(1, m.ReadKey(total - 3, 200))
    assert tail == m.KeyData(key.checksum, total, total - 3, key.encoded[-3:])
    assert await host.call(2, m.ReadKey(total, 1)) == m.ErrorReply(ErrorCode.BAD_OFFSET, "offset")


async def test_commit_refuses_images_for_another_key_and_bad_images(
    sim: StationSimulator, host: RawHost
) -> None:
    sim.device.insert("100000001")
    await hello(host)
    replies = await write_full(host, encode_image(image(serial="100000009")))
    assert replies[-1] == m.ErrorReply(ErrorCode.WRONG_KEY, "serial")
    garbage = b"\x01\x09100000001" + bytes(5)
    replies = await write_full(host, garbage, first_seq=20)
    assert replies[-1] == m.ErrorReply(ErrorCode.BAD_IMAGE, "revision")


async def test_delta_against_a_stale_base_is_refused_at_begin(
    sim: StationSimulator, host: RawHost
) -> None:
    sim.device.insert("100000001")
    await hello(host)
    key = sim.world.registry.get("100000001")
    reply = await host.call(1, m.WriteBegin(WriteMode.DELTA, 10, 1, key.checksum ^ 1))
    assert reply == m.ErrorReply(ErrorCode.STALE_DELTA_BASE, "base_checksum")


async def test_retransmitted_request_is_answered_from_the_cache_not_applied_twice(
    sim: StationSimulator, host: RawHost
) -> None:
    key = sim.world.registry.get("100000001")
    for cylinder in (1, 2, 3):
        key.record_own(at=NOW, cylinder=cylinder, outcome=AuditOutcome.GRANTED)
    sim.device.insert("100000001")
    await hello(host)
    trail = await host.call(39, m.ReadAudit(0, 10))
    assert isinstance(trail, m.AuditData)
    first = await host.call(40, m.ClearAudit(1, m.audit_digest(trail.records[:1])))
    assert first == m.AuditCleared(1, 2)
    again = await host.call(40, m.ClearAudit(1, m.audit_digest(trail.records[:1])))
    assert again == first
    assert sim.device.stats.duplicates == 1
    assert len(key.audit) == 2
    # the same sequence number with other content is a new request
    rest = trail.records[1:]
    assert await host.call(40, m.ClearAudit(2, m.audit_digest(rest))) == m.AuditCleared(2, 0)


async def test_clear_audit_erases_only_the_records_it_names(
    sim: StationSimulator, host: RawHost
) -> None:
    """The key's own records and a cylinder's records are numbered apart and interleave: the
    position and the digest of the records read, not a sequence number, say what to erase."""
    key = sim.world.registry.get("100000001")
    key.record_own(at=NOW, cylinder=1, outcome=AuditOutcome.GRANTED)  # own sequence 1
    key.carry(  # a cylinder's event 7, about another key
        [
            KeyAuditRecord(
                sequence=7,
                at=NOW,
                cylinder=9,
                key_serial="100000009",
                outcome=AuditOutcome.DENIED,
                reason="BLACKLISTED",
                source="cylinder",
            )
        ]
    )
    key.record_own(at=NOW, cylinder=2, outcome=AuditOutcome.GRANTED)  # own sequence 2
    sim.device.insert("100000001")
    await hello(host)
    trail = await host.call(1, m.ReadAudit(0, 10))
    assert isinstance(trail, m.AuditData)
    assert [r.sequence for r in trail.records] == [1, 7, 2]
    wrong = m.audit_digest(trail.records[1:3])
    assert await host.call(2, m.ClearAudit(2, wrong)) == m.ErrorReply(
        ErrorCode.AUDIT_CHANGED, "digest"
    )
    assert await host.call(3, m.ClearAudit(4, m.audit_digest(trail.records))) == m.ErrorReply(
        ErrorCode.AUDIT_CHANGED, "digest"
    )
    assert len(key.audit) == 3
    reply = await host.call(4, m.ClearAudit(2, m.audit_digest(trail.records[:2])))
    assert reply == m.AuditCleared(2, 1)
    assert [r.sequence for r in key.audit] == [2]
    assert await host.call(5, m.ClearAudit(0, 0)) == m.AuditCleared(0, 1)


async def test_hello_forgets_cached_replies(sim: StationSimulator, host: RawHost) -> None:
    sim.device.insert("100000001")
    await hello(host)
    key = sim.world.registry.get("100000001")
    key.record_own(at=NOW, cylinder=1, outcome=AuditOutcome.GRANTED)
    trail = await host.call(39, m.ReadAudit(0, 1))
    assert isinstance(trail, m.AuditData)
    request = m.ClearAudit(1, m.audit_digest(trail.records))
    assert await host.call(40, request) == m.AuditCleared(1, 0)
    key.record_own(at=NOW, cylinder=1, outcome=AuditOutcome.GRANTED)
    await hello(host)
    # The same request again is new after HELLO: refused, the trail holds another record.
    assert await host.call(40, request) == m.ErrorReply(ErrorCode.AUDIT_CHANGED, "digest")


async def test_read_audit_pages_by_payload_size(sim: StationSimulator, host: RawHost) -> None:
    key = sim.world.registry.get("100000001")
    for cylinder in range(1, 31):
        key.record_own(
            at=NOW, cylinder=cylinder, outcome=AuditOutcome.DENIED, reason="NOT_PROGRAMMED"
        )
    sim.device.insert("100000001")
    await hello(host)
    first = await host.call(1, m.ReadAudit(0, 255))
    assert isinstance(first, m.AuditData)
    assert first.total == 30
    assert 0 < len(first.records) < 30
    assert len(m.AuditData(30, 0, first.records).encode_payload()) <= 256
    assert await host.call(2, m.ReadAudit(31, 1)) == m.ErrorReply(ErrorCode.AUDIT_RANGE, "index")


async def test_bytes_take_their_time_on_an_emulated_line(world: SimWorld) -> None:
    config = StationConfig(station_id="slow-1", baudrate=9600)
    async with StationSimulator(world=world, config=config, control_port=None) as sim:
        sim.device.insert("100000001")
        host = RawHost(sim.pty_path)
        try:
            loop = asyncio.get_running_loop()
            request = encode_frame(1, MessageType.HELLO, b"\x01")
            started = loop.time()
            host.send_raw(request)
            frame = await host.frame()
            elapsed = loop.time() - started
        finally:
            host.close()
    wire = (len(request) + len(frame.encode())) * 10 / 9600
    assert elapsed >= wire * 0.95


async def test_damaged_reply_is_seen_by_the_host(sim: StationSimulator, host: RawHost) -> None:
    sim.faults.set("corrupt", count=1, direction="tx", seed=3)
    host.send(1, m.Hello(1))
    item = await asyncio.wait_for(host.inbox.get(), 2)
    if isinstance(item, FrameError):
        assert item.kind is FrameErrorKind.BAD_CRC
    else:  # the flipped byte hit the header: nothing usable arrives
        pytest.fail(f"a damaged frame decoded: {item}")

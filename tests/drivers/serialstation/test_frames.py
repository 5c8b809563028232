"""Framing codec: layout, resynchronisation, damage detection, fuzzing."""

from __future__ import annotations

import binascii
import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.serialstation.frames import (
    MAX_PAYLOAD_LIMIT,
    OVERHEAD,
    SOF,
    Frame,
    FrameDecoder,
    FrameError,
    FrameErrorKind,
    encode_frame,
)


def test_layout_of_a_frame() -> None:
    raw = encode_frame(7, 0x05, b"\x01\x02")
    assert raw[:2] == SOF
    assert raw[2] == 7
    assert raw[3] == 0x05
    assert raw[4:6] == b"\x00\x02"
    assert struct.unpack(">H", raw[6:8])[0] == binascii.crc_hqx(raw[:6], 0xFFFF)
    assert raw[8:10] == b"\x01\x02"
    assert struct.unpack(">I", raw[10:])[0] == zlib.crc32(raw[:10])
    assert len(raw) == OVERHEAD + 2


def test_encoder_refuses_out_of_range_fields() -> None:
    with pytest.raises(ValueError, match="seq"):
        encode_frame(256, 1, b"")
    with pytest.raises(ValueError, match="type"):
        encode_frame(1, -1, b"")
    with pytest.raises(ValueError, match="payload"):
        encode_frame(1, 1, bytes(MAX_PAYLOAD_LIMIT + 1))


def test_garbage_between_frames_is_skipped() -> None:
    a, b = encode_frame(1, 2, b"abc"), encode_frame(2, 3, b"")
    decoder = FrameDecoder()
    out = decoder.feed(b"\x00\xa5\xff" + a + b"noise\xa5" + b)
    assert out == [Frame(1, 2, b"abc"), Frame(2, 3, b"")]
    assert decoder.stats.garbage_bytes == 3 + 6


def test_bad_payload_crc_is_reported_with_seq_and_the_next_frame_is_found() -> None:
    damaged = bytearray(encode_frame(9, 5, b"payload"))
    damaged[10] ^= 0x40
    good = encode_frame(10, 5, b"next")
    out = FrameDecoder().feed(bytes(damaged) + good)
    assert out == [FrameError(FrameErrorKind.BAD_CRC, 9, 5), Frame(10, 5, b"next")]


def test_lost_byte_inside_a_frame_does_not_lose_the_following_frame() -> None:
    first = encode_frame(1, 5, bytes(range(40)))
    second = encode_frame(2, 5, b"second")
    third = encode_frame(3, 5, b"third")
    shortened = first[:20] + first[21:]
    out = FrameDecoder().feed(shortened + second + third)
    frames = [o for o in out if isinstance(o, Frame)]
    assert Frame(2, 5, b"second") in frames
    assert Frame(3, 5, b"third") in frames
    assert FrameError(FrameErrorKind.BAD_CRC, 1, 5) in out


def test_truncated_frame_is_reported_on_flush() -> None:
    decoder = FrameDecoder()
    raw = encode_frame(4, 6, b"0123456789")
    assert decoder.feed(raw[:12]) == []
    assert decoder.partial
    assert decoder.flush() == [FrameError(FrameErrorKind.TRUNCATED, 4, 6)]
    assert not decoder.partial


def test_flush_recovers_a_complete_frame_behind_a_truncated_one() -> None:
    decoder = FrameDecoder()
    partial = encode_frame(1, 5, bytes(100))[:30]
    complete = encode_frame(2, 5, b"ok")
    assert decoder.feed(partial + complete) == []  # still waiting for frame 1's payload
    out = decoder.flush()
    assert out == [FrameError(FrameErrorKind.TRUNCATED, 1, 5), Frame(2, 5, b"ok")]


def test_length_above_the_maximum_is_refused_without_waiting() -> None:
    decoder = FrameDecoder(max_payload=64)
    raw = encode_frame(3, 4, bytes(65))
    out = decoder.feed(raw[:8])
    assert out == [FrameError(FrameErrorKind.BAD_LENGTH, 3, 4)]


def test_max_payload_is_validated() -> None:
    with pytest.raises(ValueError, match="max_payload"):
        FrameDecoder(max_payload=0)
    with pytest.raises(ValueError, match="max_payload"):
        FrameDecoder(max_payload=MAX_PAYLOAD_LIMIT + 1)


frames_strategy = st.lists(
    st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=300)),
    max_size=5,
)


@given(st.binary(max_size=2000))
def test_random_bytes_never_crash_and_only_real_frames_come_out(data: bytes) -> None:
    decoder = FrameDecoder()
    out = decoder.feed(data) + decoder.flush()
    for item in out:
        if isinstance(item, Frame):
            assert item.encode() in data


@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 512),
    st.binary(min_size=0, max_size=520),
)
def test_valid_header_with_random_body_is_not_accepted_unless_its_crc_holds(
    seq: int, mtype: int, length: int, body: bytes
) -> None:
    head = SOF + bytes([seq, mtype]) + struct.pack(">H", length)
    header = head + struct.pack(">H", binascii.crc_hqx(head, 0xFFFF))
    data = header + body
    decoder = FrameDecoder()
    out = decoder.feed(data) + decoder.flush()
    frames = [o for o in out if isinstance(o, Frame)]
    if len(body) >= length + 4:
        payload, crc = body[:length], body[length : length + 4]
        genuine = struct.unpack(">I", crc)[0] == zlib.crc32(header + payload)
        assert (Frame(seq, mtype, payload) in frames) == genuine
        if not genuine:
            assert FrameError(FrameErrorKind.BAD_CRC, seq, mtype) in out
    for frame in frames:
        assert frame.encode() in data


@given(frames_strategy, st.lists(st.integers(1, 50), max_size=30))
def test_frames_survive_any_split_of_the_byte_stream(
    frames: list[tuple[int, int, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(encode_frame(*f) for f in frames)
    decoder = FrameDecoder()
    out: list[Frame | FrameError] = []
    pos = 0
    for cut in cuts:
        out += decoder.feed(stream[pos : pos + cut])
        pos += cut
    out += decoder.feed(stream[pos:])
    assert out == [Frame(*f) for f in frames]


@given(frames_strategy, st.binary(max_size=100))
def test_frames_after_sof_free_garbage_are_all_recovered(
    frames: list[tuple[int, int, bytes]], garbage: bytes
) -> None:
    garbage = garbage.replace(b"\xa5", b"")
    stream = b"".join(garbage + encode_frame(*f) for f in frames)
    assert FrameDecoder().feed(stream) == [Frame(*f) for f in frames]

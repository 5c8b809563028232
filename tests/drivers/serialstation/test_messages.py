"""Message payload codecs: round trips for every message type and field-naming errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.serialstation import messages as m
from drivers.serialstation.codes import ErrorCode, MessageType, Mounting, WriteMode
from drivers.serialstation.frames import Frame, FrameDecoder
from drivers.serialstation.wire import DecodeError

from .strategies import MESSAGE_STRATEGIES, any_message


def test_every_message_type_has_a_strategy() -> None:
    assert set(MESSAGE_STRATEGIES) == set(m.MESSAGE_CLASSES.values())
    assert {cls.TYPE for cls in MESSAGE_STRATEGIES} == set(MessageType)


@given(any_message, st.integers(0, 255))
def test_every_message_round_trips_through_a_frame(message: m.Message, seq: int) -> None:
    raw = m.encode_message(seq, message)
    (frame,) = FrameDecoder().feed(raw)
    assert isinstance(frame, Frame)
    assert frame.seq == seq
    assert m.decode_message(frame) == message


@given(any_message)
def test_every_message_round_trips_through_its_json_form(message: m.Message) -> None:
    assert m.message_from_dict(m.message_to_dict(message)) == message


@given(any_message, st.binary(min_size=1, max_size=4))
def test_trailing_bytes_are_refused_except_where_the_payload_is_open_ended(
    message: m.Message, extra: bytes
) -> None:
    payload = message.encode_payload() + extra
    frame = Frame(0, message.TYPE, payload)
    overrun = (
        isinstance(message, m.KeyData)
        and message.offset + len(message.data) + len(extra) > message.total
    )
    if overrun:
        with pytest.raises(DecodeError, match=r"^data:"):
            m.decode_message(frame)
    elif isinstance(message, m.WriteChunk | m.KeyData):  # the data field takes the rest
        decoded = m.decode_message(frame)
        assert isinstance(decoded, m.WriteChunk | m.KeyData)
        assert decoded.data == message.data + extra
    else:
        with pytest.raises(DecodeError):
            m.decode_message(frame)


@given(any_message)
def test_truncated_payloads_are_refused(message: m.Message) -> None:
    payload = message.encode_payload()
    fields = []
    for cut in range(len(payload)):
        try:
            decoded = m.decode_message(Frame(0, message.TYPE, payload[:cut]))
        except DecodeError as exc:
            fields.append(exc.field)
        else:  # only possible when the shorter payload is itself valid
            assert m.encode_message(0, decoded)[8:-4] == payload[:cut]
    assert all(fields)


def test_errors_name_the_field() -> None:
    with pytest.raises(DecodeError) as info:
        m.decode_message(Frame(0, MessageType.WRITE_BEGIN, b"\x07" + bytes(12)))
    assert info.value.field == "mode"
    with pytest.raises(DecodeError) as info:
        m.decode_message(Frame(0, MessageType.READ_KEY, b"\x00\x00\x00\x00"))
    assert info.value.field == "length"
    with pytest.raises(DecodeError) as info:
        m.decode_message(Frame(0, MessageType.KEY_INSERTED, b"\x03a b"))
    assert info.value.field == "serial"
    with pytest.raises(DecodeError) as info:
        m.decode_message(Frame(0, MessageType.NAK, bytes([ErrorCode.NO_KEY])))
    assert info.value.field == "code"
    with pytest.raises(DecodeError) as info:
        m.decode_message(Frame(0, 0x3F, b""))
    assert info.value.field == "type"
    hello = m.HelloReply(1, Mounting.DESK, 0, 10, 256, 8, "s", "", "").encode_payload()
    with pytest.raises(DecodeError) as info:
        m.decode_message(Frame(0, MessageType.HELLO_REPLY, hello[:2] + b"\x80" + hello[3:]))
    assert info.value.field == "capabilities"


def test_varints_must_be_minimal() -> None:
    from drivers.serialstation.wire import Reader

    assert Reader(b"\x80\x01").varint("n") == 128
    with pytest.raises(DecodeError, match="shortest"):
        Reader(b"\x80\x00").varint("n")
    with pytest.raises(DecodeError, match="longer"):
        Reader(b"\xff\xff\xff\xff\xff\x01").varint("n")


def test_encoders_refuse_out_of_range_values() -> None:
    with pytest.raises(ValueError, match="length"):
        m.encode_message(0, m.WriteBegin(WriteMode.FULL, -1, 0))
    with pytest.raises(ValueError, match="revision"):
        m.encode_message(0, m.KeyInfoReply("k", b"\x00", 0, 1, 0))
    with pytest.raises(ValueError, match="code"):
        m.encode_message(0, m.ErrorReply(ErrorCode.BAD_CRC))
    with pytest.raises(ValueError, match="serial"):
        m.encode_message(0, m.KeyInsertedNotice("with space"))

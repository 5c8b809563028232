"""The golden vectors of docs/protocols/key-station.md, checked in both directions."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from drivers.base import AccessEntry, BlacklistEntry, HardwareSchedule, KeyImage, ScheduleWindow
from drivers.serialstation.codes import MessageType
from drivers.serialstation.frames import Frame, FrameDecoder
from drivers.serialstation.image import (
    apply_delta,
    canonical,
    decode_delta,
    decode_image,
    diff,
    encode_image,
    image_checksum,
)
from drivers.serialstation.messages import (
    decode_message,
    encode_message,
    message_from_dict,
    message_to_dict,
)

SPEC = Path(__file__).resolve().parents[3] / "docs" / "protocols" / "key-station.md"
BLOCK = re.compile(r"^```(vector(?:-image|-delta)?)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _blocks(tag: str) -> list[dict[str, str]]:
    out = []
    for found_tag, body in BLOCK.findall(SPEC.read_text(encoding="utf-8")):
        if found_tag == tag:
            fields = {}
            for line in body.strip().splitlines():
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
            out.append(fields)
    return out


def _hex(value: str) -> bytes:
    return bytes.fromhex(value.replace(" ", ""))


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _image(data: dict[str, Any]) -> KeyImage:
    return KeyImage(
        serial=data["serial"],
        revision=data["revision"],
        enabled=data["enabled"],
        valid_from=_time(data["valid_from"]),
        valid_until=_time(data["valid_until"]),
        revalidate_by=_time(data["revalidate_by"]),
        schedules=tuple(
            HardwareSchedule(s["id"], tuple(ScheduleWindow(*w) for w in s["windows"]))
            for s in data["schedules"]
        ),
        access=tuple(AccessEntry(c, _time(f), _time(u), s) for c, f, u, s in data["access"]),
        blacklists=tuple(BlacklistEntry(c, v, tuple(s)) for c, v, s in data["blacklists"]),
    )


FRAME_VECTORS = _blocks("vector")


def test_the_spec_has_a_vector_for_every_message_type() -> None:
    names = {v["name"] for v in FRAME_VECTORS}
    assert names == {t.name for t in MessageType}
    assert len(_blocks("vector-image")) >= 1
    deltas = [
        decode_delta(_hex(v["delta"]), _image(json.loads(v["base"])))
        for v in _blocks("vector-delta")
    ]
    # both delta formats have vectors
    assert {_hex(v["delta"])[0] for v in _blocks("vector-delta")} == {1, 2}
    # the change section (positions, then values) is shown with more than one change
    assert any(len(d.change) >= 2 for d in deltas)


@pytest.mark.parametrize("vector", FRAME_VECTORS, ids=lambda v: v["name"])
def test_frame_vector(vector: dict[str, str]) -> None:
    message = message_from_dict(json.loads(vector["message"]))
    raw = _hex(vector["frame"])
    seq = int(vector["seq"])
    assert message.TYPE.name == vector["name"]
    assert encode_message(seq, message) == raw
    (frame,) = FrameDecoder().feed(raw)
    assert isinstance(frame, Frame)
    assert frame.seq == seq
    decoded = decode_message(frame)
    assert decoded == message
    assert message_to_dict(decoded) == json.loads(vector["message"])


@pytest.mark.parametrize("vector", _blocks("vector-image"))
def test_image_vector(vector: dict[str, str]) -> None:
    image = _image(json.loads(vector["image"]))
    raw = _hex(vector["bytes"])
    assert encode_image(image) == raw
    assert decode_image(raw) == canonical(image)
    assert image_checksum(raw) == int(vector["checksum"], 16)


@pytest.mark.parametrize("vector", _blocks("vector-delta"))
def test_delta_vector(vector: dict[str, str]) -> None:
    base = _image(json.loads(vector["base"]))
    target = _image(json.loads(vector["target"]))
    raw = _hex(vector["delta"])
    compact = base if raw[0] == 2 else None  # format 2 leaves out what the base has
    assert diff(base, target).encode(base=compact) == raw
    result = apply_delta(base, decode_delta(raw, compact))
    assert result == canonical(target)
    assert image_checksum(encode_image(result)) == int(vector["checksum"], 16)

"""Key-image encoding, checksum and deltas."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import AccessEntry, BlacklistEntry, HardwareSchedule, KeyImage, ScheduleWindow
from drivers.serialstation.image import (
    apply_delta,
    canonical,
    decode_delta,
    decode_image,
    diff,
    encode_image,
    image_checksum,
)
from drivers.serialstation.wire import DecodeError

from .conftest import T0, T1, make_image
from .strategies import key_images


@given(key_images())
def test_canonical_images_round_trip(image: KeyImage) -> None:
    encoded = encode_image(image)
    assert decode_image(encoded) == image
    assert encode_image(decode_image(encoded)) == encoded


@given(key_images())
def test_encoding_does_not_depend_on_entry_order(image: KeyImage) -> None:
    shuffled = dataclasses.replace(
        image, access=tuple(reversed(image.access)), blacklists=tuple(reversed(image.blacklists))
    )
    assert encode_image(shuffled) == encode_image(image)


@given(st.data())
def test_delta_applied_to_its_base_gives_the_target(data: st.DataObject) -> None:
    base = data.draw(key_images(serial="K1"))
    target = data.draw(key_images(serial="K1"))
    delta = diff(base, target)
    assert apply_delta(base, decode_delta(delta.encode())) == canonical(target)


@given(st.data())
def test_compact_delta_round_trips_and_gives_the_target(data: st.DataObject) -> None:
    base = data.draw(key_images(serial="K1"))
    target = data.draw(key_images(serial="K1"))
    delta = diff(base, target)
    raw = delta.encode(base=base)
    assert raw[0] == 2
    assert decode_delta(raw, base) == delta
    assert apply_delta(base, decode_delta(raw, base)) == canonical(target)
    assert len(raw) <= len(delta.encode()) + 2  # the mask costs 2 bytes, never more


@given(key_images(serial="K1", max_access=60))
def test_compact_delta_of_a_new_revision_only_is_eleven_bytes(base: KeyImage) -> None:
    target = dataclasses.replace(base, revision="ffffffffffffffff")
    raw = diff(base, target).encode(base=base)
    assert raw == bytes([2, 0, 0]) + bytes.fromhex("ffffffffffffffff")
    assert apply_delta(base, decode_delta(raw, base)) == canonical(target)


def test_compact_delta_needs_its_base_and_refuses_malformed_masks() -> None:
    base = make_image(1, entries=5)
    target = dataclasses.replace(base, revision=f"{2:016x}", access=base.access[1:])
    raw = diff(base, target).encode(base=base)
    with pytest.raises(DecodeError) as info:
        decode_delta(raw)  # a version 1 station: format 2 is unknown
    assert info.value.field == "format"
    with pytest.raises(DecodeError) as info:
        decode_delta(raw[:1] + b"\x04\x00" + raw[3:], base)  # bit 10: no such field
    assert info.value.field == "present"
    empty_add = raw[:1] + bytes([raw[1], raw[2] | 0x80]) + raw[3:] + b"\x00"
    with pytest.raises(DecodeError) as info:
        decode_delta(empty_add, base)  # a section marked present must not be empty
    assert info.value.field == "add"


@given(key_images(serial="K1", max_access=60), st.integers(1, 0xFFFFFFFF))
def test_delta_of_a_small_change_against_a_similar_base(base: KeyImage, cylinder: int) -> None:
    target = dataclasses.replace(
        base, revision="ffffffffffffffff", access=(*base.access, AccessEntry(cylinder))
    )
    delta = diff(base, target)
    assert apply_delta(base, delta) == canonical(target)
    assert len(delta.add) + len(delta.change) == 1
    assert not delta.remove


def test_changed_window_is_sent_as_a_change_not_remove_and_add() -> None:
    base = make_image(1, entries=20)
    entries = list(base.access)
    entries[5] = dataclasses.replace(entries[5], valid_until=T1 + timedelta(days=1))
    target = dataclasses.replace(base, revision=f"{2:016x}", access=tuple(entries))
    delta = diff(base, target)
    assert (len(delta.remove), len(delta.change), len(delta.add)) == (0, 1, 0)
    assert apply_delta(base, delta) == canonical(target)


def test_one_cylinder_change_on_500_is_under_five_percent_of_the_full_list() -> None:
    base = make_image(1, entries=500)
    target = dataclasses.replace(
        base, revision=f"{2:016x}", access=(*base.access, AccessEntry(999_999, T0, T1))
    )
    full = encode_image(target)
    delta = diff(base, target).encode()
    assert len(delta) / len(full) <= 0.05
    compact = diff(base, target).encode(base=base)
    assert len(compact) == len(delta) - 16  # header fields and empty sections left out


def test_checksum_is_crc32_of_the_encoding() -> None:
    import zlib

    encoded = encode_image(make_image())
    assert image_checksum(encoded) == zlib.crc32(encoded)


def test_times_are_rounded_without_widening_windows() -> None:
    start = datetime(2026, 1, 1, 8, 0, 0, 500_000, tzinfo=UTC)
    end = datetime(2026, 1, 1, 17, 0, 0, 900_000, tzinfo=UTC)
    image = make_image(
        valid_from=start, valid_until=end, revalidate_by=end, access=(AccessEntry(5, start, end),)
    )
    stored = canonical(image)
    assert stored.valid_from == start.replace(microsecond=0) + timedelta(seconds=1)
    assert stored.valid_until == end.replace(microsecond=0)
    assert stored.revalidate_by == end.replace(microsecond=0)
    assert stored.access[0].valid_from == stored.valid_from


def test_other_time_zones_are_stored_as_the_same_instant() -> None:
    cet = timezone(timedelta(hours=1))
    image = make_image(valid_from=datetime(2026, 1, 1, 1, 0, tzinfo=cet))
    assert canonical(image).valid_from == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"valid_from": datetime(2026, 1, 1)}, "valid_from"),
        ({"revision": "xyz"}, "revision"),
        ({"serial": "has space"}, "serial"),
        ({"access": (AccessEntry(0),)}, "access[0].cylinder"),
        ({"access": (AccessEntry(5, schedule_id=9),)}, "access[0].schedule_id"),
        ({"valid_until": datetime(2200, 1, 1, tzinfo=UTC)}, "valid_until"),
        (
            {"schedules": (HardwareSchedule(1, (ScheduleWindow(0x1F, 600, 600),)),)},
            "schedules[0].windows[0]",
        ),
        ({"schedules": (HardwareSchedule(0, ()),)}, "schedules[0].schedule_id"),
        (
            {"blacklists": (BlacklistEntry(1, 1, ()), BlacklistEntry(1, 2, ()))},
            "blacklists[1].cylinder",
        ),
        ({"blacklists": (BlacklistEntry(1, 1, ("a", "a")),)}, "blacklists[0].serials"),
    ],
)
def test_invalid_images_are_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{re.escape(field)}:"):
        encode_image(dataclasses.replace(make_image(), **changes))


def test_decoder_refuses_non_canonical_and_damaged_images() -> None:
    image = make_image(access=(AccessEntry(5), AccessEntry(9)))
    encoded = bytearray(encode_image(image))
    with pytest.raises(DecodeError) as info:
        decode_image(bytes(encoded) + b"\x00")
    assert info.value.field == "image"
    encoded[0] = 2
    with pytest.raises(DecodeError) as info:
        decode_image(bytes(encoded))
    assert info.value.field == "format"
    with pytest.raises(DecodeError):
        decode_image(encode_image(image)[:-3])


def test_delta_against_the_wrong_base_is_refused() -> None:
    base = make_image(1, entries=10)
    target = dataclasses.replace(base, revision=f"{2:016x}", access=base.access[:2])
    delta = diff(base, target)
    smaller = dataclasses.replace(base, access=base.access[:1])
    with pytest.raises(DecodeError) as info:
        apply_delta(smaller, delta)
    assert info.value.field in {"remove", "change"}


def test_delta_between_different_keys_is_refused() -> None:
    with pytest.raises(ValueError, match="serial"):
        diff(make_image(serial="A"), make_image(serial="B"))

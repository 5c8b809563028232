"""Lock references: one notation out, every published notation in."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from gateway.domain.locks import (
    CANONICAL_PATTERN,
    LockRef,
    LockRefError,
    LockText,
    cylinder_lock,
    door_lock,
)

cylinders = st.integers(min_value=1, max_value=0xFFFFFFFF)
controllers = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z").filter(
    lambda c: c not in ("cylinder", "door")  # the typed prefixes win (see below)
)
doors = st.integers(min_value=1, max_value=16)


@given(cylinders)
def test_a_cylinder_in_every_published_form_is_one_lock(number: int) -> None:
    canonical = f"cylinder:{number}"
    for text in (canonical, str(number), f" {number} "):
        ref = LockRef.parse(text)
        assert (ref.kind, ref.cylinder, str(ref)) == ("cylinder", str(number), canonical)
    assert cylinder_lock(number) == canonical == cylinder_lock(str(number))
    assert re.fullmatch(CANONICAL_PATTERN, canonical)


@given(controllers, doors)
def test_a_door_in_every_published_form_is_one_lock(controller: str, door: int) -> None:
    canonical = f"door:{controller}/{door}"
    for text in (canonical, f"{controller}/{door}", f"{controller}:{door}"):
        ref = LockRef.parse(text)
        assert (ref.kind, ref.controller_id, ref.door) == ("door", controller, door), text
        assert str(ref) == canonical
    assert door_lock(controller, door) == canonical
    assert re.fullmatch(CANONICAL_PATTERN, canonical)


def test_the_typed_forms_win_over_the_colon_form() -> None:
    assert str(LockRef.parse("cylinder:5")) == "cylinder:5"
    assert str(LockRef.parse("door:cylinder/5")) == "door:cylinder/5"
    assert str(LockRef.parse("ctrl:a:3")) == "door:ctrl:a/3"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("the-front-door", "expected cylinder:NUMBER or door:CONTROLLER/DOOR"),
        ("", "expected cylinder:NUMBER"),
        ("cylinder:0", "a cylinder number is a decimal number from 1 to 4294967295"),
        ("cylinder:4294967296", "from 1 to 4294967295"),
        ("cylinder:abc", "a cylinder number"),
        ("door:ctrl-office/17", "the door is a number from 1 to 16"),
        ("door:ctrl-office/0", "the door is a number from 1 to 16"),
        ("door:ctrl-office:1", "a door is written door:CONTROLLER/DOOR"),
        ("door:-bad/1", "a controller id is 1 to 64"),
        ("ctrl office/1", "a controller id"),
    ],
)
def test_a_text_that_is_no_lock_is_refused_naming_it(text: str, says: str) -> None:
    with pytest.raises(LockRefError) as info:
        LockRef.parse(text)
    assert repr(text) in str(info.value) and says in str(info.value)


def test_a_pydantic_field_takes_any_form_and_keeps_the_canonical_one() -> None:
    adapter: TypeAdapter[str] = TypeAdapter(LockText)
    assert adapter.validate_python("200101") == "cylinder:200101"
    assert adapter.validate_python(200101) == "cylinder:200101"
    assert adapter.validate_python("ctrl-office:1") == "door:ctrl-office/1"
    with pytest.raises(ValidationError):
        adapter.validate_python("somewhere")
    assert adapter.json_schema()["pattern"] == CANONICAL_PATTERN

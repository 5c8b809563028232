"""Lock references: one notation for a lock in every output, every published form as input.

A lock is an offline cylinder or a door of a door controller. lockgate writes them

- ``cylinder:200101`` — cylinder number 200101 (1 to 4294967295, no leading zeros);
- ``door:ctrl-office/1`` — door 1 (1 to 16) of the door controller ``ctrl-office``;

in MQTT events, ``explain``, reports, the audit log and the docs. As input (``explain``,
report filters, ``audit show --lock``) it accepts these and every form it published before:

- ``200101`` — a bare cylinder number;
- ``ctrl-office/1`` — a door without the ``door:`` prefix;
- ``ctrl-office:1`` — controller and door joined by a colon (the last colon: controller ids
  may contain colons).

The typed forms are unambiguous and win: ``cylinder:5`` is cylinder 5, even if a controller
were named ``cylinder``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Final, Literal

from pydantic import BeforeValidator, StringConstraints

CYLINDER_PREFIX: Final = "cylinder:"
DOOR_PREFIX: Final = "door:"
MAX_DOOR: Final = 16
MAX_CYLINDER: Final = 0xFFFFFFFF

_CONTROLLER = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"
_DOOR = r"(?:[1-9]|1[0-6])"
_CYLINDER = r"[1-9][0-9]{0,9}"
CANONICAL_PATTERN: Final = rf"^(?:cylinder:{_CYLINDER}|door:{_CONTROLLER}/{_DOOR})$"
"""The canonical forms as one regular expression (the JSON Schema ``pattern`` of a lock)."""

_CONTROLLER_RE = re.compile(rf"^{_CONTROLLER}$")
_NUMBER_RE = re.compile(r"^\d{1,10}$")
_DOOR_RE = re.compile(r"^\d{1,2}$")

FORMS: Final = (
    "cylinder:NUMBER or door:CONTROLLER/DOOR (also accepted: NUMBER, CONTROLLER/DOOR, "
    "CONTROLLER:DOOR)"
)


class LockRefError(ValueError):
    """A text that is not a lock reference; the message names the text and the forms."""


@dataclass(frozen=True, slots=True)
class LockRef:
    """A lock: an offline cylinder or a controller door. ``str()`` gives the canonical form."""

    kind: Literal["cylinder", "door"]
    cylinder: str | None = None
    controller_id: str | None = None
    door: int | None = None

    @classmethod
    def of_cylinder(cls, number: str | int) -> LockRef:
        """Cylinder ``number``; raises :class:`LockRefError` when it is not one."""
        return cls("cylinder", cylinder=_cylinder(str(number), str(number)))

    @classmethod
    def of_door(cls, controller_id: str, door: int) -> LockRef:
        """Door ``door`` of controller ``controller_id``; raises :class:`LockRefError`."""
        text = f"{DOOR_PREFIX}{controller_id}/{door}"
        return cls("door", controller_id=_controller(controller_id, text), door=_door(door, text))

    @classmethod
    def parse(cls, text: str) -> LockRef:
        """Any accepted form (see the module docstring); raises :class:`LockRefError` saying
        the forms when ``text`` is none of them."""
        t = text.strip()
        if t.startswith(CYLINDER_PREFIX):
            return cls("cylinder", cylinder=_cylinder(t[len(CYLINDER_PREFIX) :], text))
        if t.startswith(DOOR_PREFIX):
            controller, sep, door = t[len(DOOR_PREFIX) :].rpartition("/")
            if not sep:
                raise LockRefError(f"lock {text!r}: a door is written door:CONTROLLER/DOOR")
            return cls.of_door_text(controller, door, text)
        if _NUMBER_RE.match(t):
            return cls("cylinder", cylinder=_cylinder(t, text))
        for separator in ("/", ":"):
            controller, sep, door = t.rpartition(separator)
            if sep and controller and _DOOR_RE.match(door):
                return cls.of_door_text(controller, door, text)
        raise LockRefError(f"lock {text!r}: expected {FORMS}")

    @classmethod
    def of_door_text(cls, controller: str, door: str, text: str) -> LockRef:
        if not _DOOR_RE.match(door):
            raise LockRefError(f"lock {text!r}: the door is a number from 1 to {MAX_DOOR}")
        return cls("door", controller_id=_controller(controller, text), door=_door(int(door), text))

    def __str__(self) -> str:
        if self.kind == "cylinder":
            return f"{CYLINDER_PREFIX}{self.cylinder}"
        return f"{DOOR_PREFIX}{self.controller_id}/{self.door}"


def _cylinder(number: str, text: str) -> str:
    if not _NUMBER_RE.match(number) or not 0 < int(number) <= MAX_CYLINDER:
        raise LockRefError(
            f"lock {text!r}: a cylinder number is a decimal number from 1 to {MAX_CYLINDER}"
        )
    return str(int(number))


def _controller(controller: str, text: str) -> str:
    if not _CONTROLLER_RE.match(controller):
        raise LockRefError(
            f"lock {text!r}: a controller id is 1 to 64 letters, digits and . _ : -, "
            "starting with a letter or digit"
        )
    return controller


def _door(door: int, text: str) -> int:
    if not 1 <= door <= MAX_DOOR:
        raise LockRefError(f"lock {text!r}: the door is a number from 1 to {MAX_DOOR}")
    return door


def cylinder_lock(number: str | int) -> str:
    """The canonical form of cylinder ``number``: ``cylinder:200101``."""
    return str(LockRef.of_cylinder(number))


def door_lock(controller_id: str, door: int) -> str:
    """The canonical form of a controller door: ``door:ctrl-office/1``."""
    return str(LockRef.of_door(controller_id, door))


def canonical_lock(value: object) -> object:
    """Any accepted form of a lock (a cylinder number may be an int) in its canonical form;
    other values are returned as they are, for the type check to refuse."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        return str(LockRef.parse(value))
    return value


LockText = Annotated[
    str, StringConstraints(pattern=CANONICAL_PATTERN), BeforeValidator(canonical_lock)
]
"""A lock as a pydantic field: any accepted form in, the canonical form stored and sent."""


__all__ = [
    "CANONICAL_PATTERN",
    "FORMS",
    "LockRef",
    "LockRefError",
    "LockText",
    "canonical_lock",
    "cylinder_lock",
    "door_lock",
]

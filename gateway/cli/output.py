"""The one way the CLI writes JSON (``--json``).

Every command's ``--json`` goes through :func:`print_json`, which turns the values commands
hold into JSON types the same way everywhere:

- instants: ISO 8601 in UTC with ``T`` and the zone (``2026-11-23T08:00:00+00:00``); a naive
  instant is a bug and raises;
- dates: ``YYYY-MM-DD``; enums: their value; tuples and sets: lists (sets sorted);
- objects with an ``as_json()`` method: its result; pydantic models: ``model_dump(mode="json")``;
  dataclasses (with or without slots): their fields.

Anything else raises :class:`TypeError`, so a new type cannot slip out as its ``str()``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel


def instant(value: datetime) -> str:
    """An instant as written in JSON: UTC, ISO 8601, ``T``, ``+00:00``."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"a naive datetime cannot be written as JSON: {value.isoformat()}")
    return value.astimezone(UTC).isoformat()


def jsonable(value: Any) -> Any:
    """``value`` as JSON types (see the module docstring)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, PurePath):
        return str(value)
    as_json = getattr(value, "as_json", None)
    if callable(as_json):
        return jsonable(as_json())
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    raise TypeError(f"{type(value).__name__} has no JSON form")


def print_json(value: Any) -> None:
    """Write ``value`` to stdout as indented JSON (UTF-8 characters kept)."""
    sys.stdout.write(json.dumps(jsonable(value), indent=2, ensure_ascii=False) + "\n")


__all__ = ["instant", "jsonable", "print_json"]

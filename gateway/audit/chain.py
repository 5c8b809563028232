"""The hash chain of the audit log: entry layout, canonical JSON, what is hashed.

An entry is::

    seq, at, actor, action, subject, data, personal, personal_salt, personal_digest,
    prev_hash, hash

- ``seq`` counts from 1 without gaps; ``prev_hash`` is the ``hash`` of entry ``seq - 1``
  (:data:`GENESIS`, 64 zeros, for entry 1).
- ``data`` is non-personal JSON and ``personal`` the JSON of the personal fields (a visitor's
  name, a person's mobile, free text), both kept as canonical JSON text (:func:`canonical`).
- ``personal_digest`` = HMAC-SHA-256 of the ``personal`` text keyed with ``personal_salt``
  (16 random bytes, hex). The salt makes the digest useless for guessing the erased data.
- ``hash`` = SHA-256 of the canonical JSON of ``{"v": 1, "seq", "at", "actor", "action",
  "subject", "data", "personal_digest", "prev_hash"}`` where ``at`` is the UTC instant in ISO
  8601 with microseconds and ``data`` the stored text. ``personal`` and the salt are *not*
  hashed: erasing them (setting both to NULL) keeps every hash and link valid, and the kept
  digest still binds the entry to what it once held. ``erased_at`` is set with them, and a
  later entry of the chain records the erasure (:data:`gateway.audit.log.ERASED_ENTRIES`), so
  that an erasure can be told from a removal.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, Final

from pydantic import BaseModel

GENESIS: Final = "0" * 64
"""``prev_hash`` of the first entry."""

FORMAT_VERSION: Final = 1

SUBJECT_SEPARATOR: Final = "; "
MAX_SUBJECT: Final = 200


def jsonable(value: Any) -> Any:
    """``value`` with instants, dates, enums, models, tuples and sets turned into JSON types.

    Instants become UTC ISO 8601 strings; sets are sorted. Raises :class:`TypeError` for
    anything else that JSON cannot hold."""
    # The common exact types first (no subclass, so the same result as the checks below).
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if t is dict:
        out_: dict[str, Any] = {}
        for k, v in value.items():
            if type(k) is not str and not isinstance(k, str):
                raise TypeError(f"JSON keys must be strings, got {k!r}")
            out_[k] = jsonable(v)
        return out_
    if t is list:
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value} cannot be stored as JSON")
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"a naive datetime cannot be logged: {value.isoformat()}")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"JSON keys must be strings, got {k!r}")
            out[k] = jsonable(v)
        return out
    if isinstance(value, set | frozenset):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    raise TypeError(f"{type(value).__name__} cannot be stored as JSON")


_CANONICAL: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
"""The encoder of :func:`canonical`, made once (``json.dumps`` with options makes one per call)."""


_string: Final[Callable[[str], str]] = json.encoder.encode_basestring
"""A string as JSON text with its characters as they are (the encoding of :data:`_CANONICAL`)."""


def canonical(value: Any) -> str:
    """Canonical JSON text: keys sorted, no spaces, UTF-8 characters as they are."""
    return _CANONICAL.encode(jsonable(value))


def instant(at: datetime) -> str:
    """The hashed form of an instant: UTC, ISO 8601, microseconds."""
    if at.tzinfo is UTC:
        return at.isoformat(timespec="microseconds")
    if at.tzinfo is None:
        raise ValueError(f"a naive datetime cannot be logged: {at.isoformat()}")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def new_salt() -> str:
    """16 random bytes, hex: the per-entry salt of the personal digest."""
    return secrets.token_hex(16)


def personal_digest(salt: str, personal_text: str) -> str:
    """HMAC-SHA-256 of the personal JSON text keyed with the salt, hex."""
    return hmac.new(bytes.fromhex(salt), personal_text.encode("utf-8"), hashlib.sha256).hexdigest()


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    data_text: str,
    personal_digest: str | None,
    prev_hash: str,
) -> str:
    """The hash of an entry (see the module docstring for what goes in)."""
    # The canonical JSON of the hashed object, written out in its sorted key order; every
    # value is already a JSON string, a whole number or null.
    document = (
        f'{{"action":{_string(action)},"actor":{_string(actor)},"at":"{instant(at)}",'
        f'"data":{_string(data_text)},'
        f'"personal_digest":{"null" if personal_digest is None else _string(personal_digest)},'
        f'"prev_hash":{_string(prev_hash)},"seq":{int(seq)},"subject":{_string(subject)},'
        f'"v":{FORMAT_VERSION}}}'
    )
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def check_subject(subject: str) -> str:
    """A subject names what an entry is about by kind and id (``credential 4000001``): at
    most 200 characters, no ``;`` and no line breaks."""
    if not subject or len(subject) > MAX_SUBJECT:
        raise ValueError(f"subject: must be 1 to {MAX_SUBJECT} characters, got {subject!r}")
    if ";" in subject or "\n" in subject or "\r" in subject:
        raise ValueError(f"subject: must not contain ';' or a line break: {subject!r}")
    return subject


def join_subjects(subjects: list[str]) -> str:
    """The stored ``subject``: the subjects without duplicates, in order, joined by ``; ``."""
    seen: dict[str, None] = {}
    for s in subjects:
        seen[check_subject(s)] = None
    return SUBJECT_SEPARATOR.join(seen)


def split_subjects(subject: str) -> list[str]:
    """The subjects of a stored ``subject``."""
    return [s for s in subject.split(SUBJECT_SEPARATOR) if s] if subject else []


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored audit entry. ``personal`` is ``None`` when the entry has no personal part or
    it was erased (``erased_at`` says which)."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    data: dict[str, Any]
    personal: dict[str, Any] | None
    personal_digest: str | None
    prev_hash: str
    hash: str
    erased_at: datetime | None = None
    subjects: list[str] = field(default_factory=list)

    def as_json(self, *, personal: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "data": self.data,
            "personal_digest": self.personal_digest,
            "erased_at": self.erased_at.isoformat() if self.erased_at else None,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }
        if personal:
            out["personal"] = self.personal
        return out


@dataclass(frozen=True, slots=True)
class Head:
    """The newest entry of the chain: what an anchor publishes."""

    seq: int
    hash: str
    at: datetime

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "at": instant(self.at)}


__all__ = [
    "GENESIS",
    "Entry",
    "Head",
    "canonical",
    "check_subject",
    "entry_hash",
    "instant",
    "join_subjects",
    "jsonable",
    "new_salt",
    "personal_digest",
    "split_subjects",
]

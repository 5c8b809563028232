"""Processed inbound request ids: makes inbound requests idempotent.

A request (an MQTT command, an import) carries an id. The command layer looks the id up in the
same transaction in which it would apply the request; if it was processed before, it answers
with the stored response instead of applying it again. Otherwise it applies the request and
records the id and response in that same transaction, so the record exists exactly when the
change does.

Each record keeps the :func:`digest` of the validated request. A request id seen again is a
*replay* when the request name and the digest are the same (it gets the stored response); any
other reuse of the id is a different request, which :meth:`InboxEntry.matches` tells apart so
that the caller can refuse it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.orm import Session

from gateway.domain import Conflict
from gateway.store.bulk import BulkInsert
from gateway.store.repository import rows_among
from gateway.store.tables import check_json_object, inbox

__all__ = ["InboxEntry", "digest", "lookup", "lookup_many", "prune", "record", "record_many"]

MAX_REQUEST_ID = 200
MAX_KIND = 100
_DIGEST_LENGTH = 64
_DIGEST_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
"""The encoder of :func:`digest`, made once: ``json.dumps`` with options makes one per call."""


def digest(kind: str, body: dict[str, Any]) -> str:
    """The SHA-256 (hex) of a request: its kind and its validated fields as canonical JSON
    (keys sorted, no spaces), so that the same request gives the same digest however its
    payload was spelled."""
    text = _DIGEST_JSON.encode({"kind": kind, "body": body})
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class InboxEntry:
    """A processed request: its id, its kind (e.g. ``credential/activate``), the response that
    was sent, when the request was received (aware, UTC) and its :func:`digest` (``None`` in
    records written before digests were kept)."""

    request_id: str
    kind: str
    response: dict[str, Any]
    received_at: datetime
    digest: str | None = None

    def matches(self, kind: str, request_digest: str | None) -> bool:
        """Whether a request of ``kind`` with ``request_digest`` is a replay of this one (the
        same request again) rather than another request reusing its id. Without a digest on
        either side only the kinds are compared."""
        if kind != self.kind:
            return False
        return self.digest is None or request_digest is None or self.digest == request_digest


def _check_text(field: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{field}: must be a string, got {type(value).__name__}")
    if not value or value != value.strip():
        raise ValueError(f"{field}: must be non-empty without leading or trailing spaces")
    if len(value) > limit:
        raise ValueError(f"{field}: at most {limit} characters, got {len(value)}")
    if not value.isprintable():
        raise ValueError(f"{field}: must not contain control characters")
    return value


_LOOKUP = select(inbox).where(inbox.c.request_id == bindparam("request_id"))
_INSERT = insert(inbox)
_INSERT_MANY = BulkInsert(inbox)


def lookup(session: Session, request_id: str) -> InboxEntry | None:
    """The recorded request with ``request_id``, or None if it was never processed."""
    row = session.connection().execute(_LOOKUP, {"request_id": request_id}).mappings().first()
    if row is None:
        return None
    return _entry(row)


def _entry(row: Any) -> InboxEntry:
    return InboxEntry(
        row["request_id"], row["kind"], row["response"], row["received_at"], row["digest"]
    )


def _check_digest(value: str | None) -> str | None:
    if value is not None and (
        len(value) != _DIGEST_LENGTH or value.strip("0123456789abcdef") != ""
    ):
        raise ValueError(f"digest: must be {_DIGEST_LENGTH} lowercase hex digits, got {value!r}")
    return value


def lookup_many(session: Session, request_ids: Sequence[str]) -> dict[str, InboxEntry]:
    """The recorded requests among ``request_ids``, by id (one query per 500 ids)."""
    rows = rows_among(session.connection(), inbox, "request_id", request_ids)
    return {row.request_id: _entry(row._mapping) for row in rows}


def record(
    session: Session,
    request_id: str,
    kind: str,
    response: dict[str, Any],
    received_at: datetime,
    request_digest: str | None = None,
) -> None:
    """Record that ``request_id`` was processed with ``response`` (a JSON object, see
    :func:`~gateway.store.tables.check_json_object`) and the request's :func:`digest`.

    Raises :class:`~gateway.domain.Conflict` if the id was recorded before: look it up first.
    """
    _check_text("request_id", request_id, MAX_REQUEST_ID)
    _check_text("kind", kind, MAX_KIND)
    check_json_object("response", response)
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError("received_at: must carry a time zone")
    _check_digest(request_digest)
    if lookup(session, request_id) is not None:
        raise Conflict(f"request {request_id!r} is already recorded", field="request_id")
    session.connection().execute(
        _INSERT,
        {
            "request_id": request_id,
            "kind": kind,
            "response": response,
            "received_at": received_at,
            "digest": request_digest,
        },
    )


def record_many(session: Session, entries: Sequence[InboxEntry]) -> None:
    """Record several processed requests at once (each id must be new: the caller looked
    them up in this transaction)."""
    rows = []
    for e in entries:
        _check_text("request_id", e.request_id, MAX_REQUEST_ID)
        _check_text("kind", e.kind, MAX_KIND)
        check_json_object("response", e.response)
        if e.received_at.tzinfo is None or e.received_at.utcoffset() is None:
            raise ValueError("received_at: must carry a time zone")
        _check_digest(e.digest)
        rows.append(
            {
                "request_id": e.request_id,
                "kind": e.kind,
                "response": e.response,
                "received_at": e.received_at,
                "digest": e.digest,
            }
        )
    _INSERT_MANY.execute(session.connection(), rows)


def prune(session: Session, older_than: datetime) -> int:
    """Forget requests received before ``older_than``; returns how many were removed.

    A request replayed after its record was pruned is applied again, so keep records longer
    than any sender retries.
    """
    if older_than.tzinfo is None or older_than.utcoffset() is None:
        raise ValueError("older_than: must carry a time zone")
    result = session.connection().execute(delete(inbox).where(inbox.c.received_at < older_than))
    return int(getattr(result, "rowcount", 0))

"""Transactional outbox: outbound MQTT messages written in the same transaction as the change
they announce.

A relay reads :func:`pending` messages in id order, publishes them and calls
:func:`mark_published`; a crash between publishing and marking republishes them (at least once),
so receivers deduplicate by content or message id. Ids are allocated in commit order because
write sessions are serialised (see :mod:`gateway.store.database`), and are never reused, not
even after :func:`purge_published` (AUTOINCREMENT on SQLite, a sequence on PostgreSQL).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, bindparam, delete, event, func, insert, select, update
from sqlalchemy.orm import Session

from gateway.domain import utcnow
from gateway.store.bulk import BulkInsert
from gateway.store.tables import outbox

__all__ = [
    "MAX_TOPIC_BYTES",
    "OutboxMessage",
    "append",
    "append_many",
    "append_numbered",
    "count_pending",
    "mark_published",
    "pending",
    "purge_published",
    "recent_published",
    "replace_payload",
    "write_staged",
]

MAX_TOPIC_BYTES = 65535
"""MQTT's limit on the length of a topic name, in UTF-8 bytes."""

_CHUNK = 1000  # ids per UPDATE, well below every database's bound-parameter limit


@dataclass(frozen=True)
class OutboxMessage:
    """An outbound message: what to publish (topic, payload, QoS, retain flag) and when the
    change it announces was committed (aware, UTC)."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    created_at: datetime


def _check_topic(topic: object) -> str:
    if not isinstance(topic, str):
        raise TypeError(f"topic: must be a string, got {type(topic).__name__}")
    if not topic:
        raise ValueError("topic: must not be empty")
    if "+" in topic or "#" in topic:
        raise ValueError("topic: wildcards + and # are not allowed in a topic to publish to")
    if "\x00" in topic:
        raise ValueError("topic: must not contain a NUL character")
    if len(topic.encode("utf-8")) > MAX_TOPIC_BYTES:
        raise ValueError(f"topic: longer than {MAX_TOPIC_BYTES} bytes")
    return topic


def _check_delivery(qos: object, retain: object) -> None:
    if isinstance(qos, bool) or qos not in (0, 1, 2):
        raise ValueError(f"qos: must be 0, 1 or 2, got {qos!r}")
    if not isinstance(retain, bool):
        raise TypeError(f"retain: must be a bool, got {type(retain).__name__}")


def _aware(field: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field}: must carry a time zone")
    return value


def append(
    session: Session,
    topic: str,
    payload: bytes,
    *,
    qos: int = 1,
    retain: bool = False,
    at: datetime | None = None,
) -> int:
    """Queue a message to publish after the session commits; returns its id.

    ``at`` is the creation time (default: now).
    """
    _check_topic(topic)
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TypeError(f"payload: must be bytes, got {type(payload).__name__}")
    _check_delivery(qos, retain)
    created = utcnow() if at is None else _aware("at", at)
    conn = session.connection()
    _write_numbered(conn)
    result = conn.execute(
        _INSERT,
        {
            "topic": topic,
            "payload": bytes(payload),
            "qos": qos,
            "retain": retain,
            "created_at": created,
        },
    )
    return int(result.scalar_one())


_INSERT = insert(outbox).returning(outbox.c.id)
_PENDING = (
    select(outbox)
    .where(outbox.c.published_at.is_(None), outbox.c.id > bindparam("after"))
    .order_by(outbox.c.id)
    .limit(bindparam("n"))
)
_INSERT_MANY = BulkInsert(outbox)


def append_many(
    session: Session,
    messages: Sequence[tuple[str, bytes]],
    *,
    qos: int = 1,
    retain: bool = False,
    at: datetime | None = None,
) -> None:
    """Queue several ``(topic, payload)`` messages in one statement, in the order given."""
    _check_delivery(qos, retain)
    created = utcnow() if at is None else _aware("at", at)
    rows = []
    for topic, payload in messages:
        _check_topic(topic)
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError(f"payload: must be bytes, got {type(payload).__name__}")
        rows.append(
            {
                "topic": topic,
                "payload": bytes(payload),
                "qos": qos,
                "retain": retain,
                "created_at": created,
            }
        )
    if rows:
        conn = session.connection()
        _write_numbered(conn)
        _INSERT_MANY.execute(conn, rows)


def append_numbered(
    session: Session,
    topic: str,
    payload_of: Callable[[int], bytes],
    *,
    qos: int = 1,
    retain: bool = False,
    at: datetime | None = None,
) -> None:
    """Queue a message whose payload carries its own id (an event's ``seq``):
    ``payload_of(id)`` makes the payload once the id is known.

    The messages so queued in a transaction are written together, in the order queued, in
    two statements (their rows, then their ids' payloads): before the transaction commits,
    before a savepoint starts, and before anything else of this module writes or reads the
    outbox in it (so every message still gets an id above those queued before it and below
    those queued after it). A rolled back transaction or savepoint discards them."""
    _check_topic(topic)
    _check_delivery(qos, retain)
    created = utcnow() if at is None else _aware("at", at)
    conn = session.connection()
    _hook(conn.engine)
    _numbered(conn).append((topic, payload_of, qos, retain, created))
    session.info[_STAGED] = True


def pending(session: Session, *, limit: int = 100, after_id: int = 0) -> list[OutboxMessage]:
    """Up to ``limit`` unpublished messages, oldest (lowest id) first; only those with an id
    above ``after_id`` (messages already published whose marks are not written yet)."""
    write_staged(session)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit: must be a positive whole number, got {limit!r}")
    if isinstance(after_id, bool) or not isinstance(after_id, int):
        raise ValueError(f"after_id: must be a whole number, got {after_id!r}")
    rows = session.connection().execute(_PENDING, {"after": after_id, "n": limit}).mappings()
    return [_message(r) for r in rows]


_REPLACE = (
    update(outbox)
    .where(outbox.c.id == bindparam("message_id"), outbox.c.published_at.is_(None))
    .values(payload=bindparam("new_payload"))
)
_STAGED: Final = "lockgate.outbox.payloads"
_HOOKED_ENGINES: Final[weakref.WeakSet[Engine]] = weakref.WeakSet()


def _staged(conn: Connection) -> dict[int, bytes]:
    staged: dict[int, bytes] | None = conn.info.get(_STAGED)
    if staged is None:
        staged = conn.info[_STAGED] = {}
    return staged


_NUMBERED: Final = "lockgate.outbox.numbered"
_Numbered = tuple[str, Callable[[int], bytes], int, bool, datetime]
_FILL = (
    update(outbox)
    .where(outbox.c.id == bindparam("message_id"))
    .values(
        topic=bindparam("new_topic"),
        payload=bindparam("new_payload"),
        qos=bindparam("new_qos"),
        retain=bindparam("new_retain"),
        created_at=bindparam("new_created_at", type_=outbox.c.created_at.type),
    )
)


def _numbered(conn: Connection) -> list[_Numbered]:
    queued: list[_Numbered] | None = conn.info.get(_NUMBERED)
    if queued is None:
        queued = conn.info[_NUMBERED] = []
    return queued


def _write_numbered(conn: Connection) -> None:
    queued: list[_Numbered] | None = conn.info.get(_NUMBERED)
    if not queued:
        return
    conn.info[_NUMBERED] = []
    placeholders = [
        {"topic": topic, "payload": b"", "qos": qos, "retain": retain, "created_at": created}
        for topic, _, qos, retain, created in queued
    ]
    # The database hands out the ids; whatever order it returns them in, the lowest goes to
    # the message queued first, and every row is then filled with its own message.
    ids = sorted(int(i) for i in conn.execute(_INSERT, placeholders).scalars())
    conn.execute(
        _FILL,
        [
            {
                "message_id": message_id,
                "new_topic": topic,
                "new_payload": bytes(payload_of(message_id)),
                "new_qos": qos,
                "new_retain": retain,
                "new_created_at": created,
            }
            for message_id, (topic, payload_of, qos, retain, created) in zip(
                ids, queued, strict=True
            )
        ],
    )


def _hook(engine: Engine) -> None:
    if engine not in _HOOKED_ENGINES:
        _HOOKED_ENGINES.add(engine)
        if not event.contains(engine, "savepoint", _write_staged):
            event.listen(engine, "savepoint", _write_staged)
            event.listen(engine, "rollback_savepoint", _discard_staged)
            event.listen(engine, "rollback", _discard_staged)
            event.listen(engine, "commit", _nothing_queued)


def _nothing_queued(conn: Connection) -> None:
    if conn.info.get(_NUMBERED) or conn.info.get(_STAGED):
        # Only a before_commit listener that queues after this module's own ran could get
        # here: refuse the commit (the transaction is rolled back) rather than lose them.
        _discard_staged(conn)
        raise RuntimeError("outbox messages were queued after they were written for commit")


def _write_staged(conn: Connection, *_: Any) -> None:
    _write_numbered(conn)
    staged = _staged(conn)
    if staged:
        rows = [{"message_id": i, "new_payload": p} for i, p in staged.items()]
        staged.clear()
        conn.execute(_REPLACE, rows)


def _discard_staged(conn: Connection, *_: Any) -> None:
    _staged(conn).clear()
    conn.info.pop(_NUMBERED, None)


def write_staged(session: Session, *_: Any) -> None:
    """Write the payloads replaced with ``deferred=True`` in this transaction and still
    kept (before commit, before a savepoint starts, before this module reads the outbox)."""
    if session.info.pop(_STAGED, False):
        _write_staged(session.connection())


# Every session writes its staged payloads before it commits (one listener for the class).
event.listen(Session, "before_commit", write_staged)


def replace_payload(
    session: Session, message_id: int, payload: bytes, *, deferred: bool = False
) -> None:
    """Replace the payload of an unpublished message (e.g. to put its own id in it).

    Raises LookupError when no unpublished message has ``message_id``. With ``deferred``
    (a message appended in this transaction) the payload is written before the transaction
    commits, with those of the other messages so replaced in one statement, and the message
    is not checked; a rolled back transaction or savepoint discards it with the message."""
    if isinstance(message_id, bool) or not isinstance(message_id, int):
        raise TypeError(f"message_id: must be an integer, got {message_id!r}")
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TypeError(f"payload: must be bytes, got {type(payload).__name__}")
    conn = session.connection()
    if deferred:
        _hook(conn.engine)
        _staged(conn)[message_id] = bytes(payload)
        session.info[_STAGED] = True
        return
    _write_staged(conn)
    result = conn.execute(
        update(outbox)
        .where(outbox.c.id == message_id, outbox.c.published_at.is_(None))
        .values(payload=bytes(payload))
    )
    if not getattr(result, "rowcount", 0):
        raise LookupError(f"message_id: no unpublished message {message_id}")


def recent_published(
    session: Session, *, limit: int = 100, since: datetime | None = None
) -> list[OutboxMessage]:
    """The ``limit`` most recently published messages (highest ids), published at ``since``
    or later when given, oldest first: what a broker that lost its last changes may be
    missing."""
    write_staged(session)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit: must be a positive whole number, got {limit!r}")
    published = (
        outbox.c.published_at.is_not(None) if since is None else outbox.c.published_at >= since
    )
    newest = select(outbox).where(published).order_by(outbox.c.id.desc()).limit(limit).subquery()
    rows = session.connection().execute(select(newest).order_by(newest.c.id)).mappings()
    return [_message(r) for r in rows]


def _message(r: Any) -> OutboxMessage:
    return OutboxMessage(
        id=r["id"],
        topic=r["topic"],
        payload=bytes(r["payload"]),
        qos=r["qos"],
        retain=r["retain"],
        created_at=r["created_at"],
    )


def mark_published(session: Session, ids: Sequence[int], *, at: datetime | None = None) -> None:
    """Mark messages as published (at ``at``, default now). Ids already marked keep their
    first publication time; unknown ids are ignored."""
    write_staged(session)
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"ids: message ids are integers, got {i!r}")
    when = utcnow() if at is None else _aware("at", at)
    unique = sorted(set(ids))
    for start in range(0, len(unique), _CHUNK):
        session.connection().execute(
            update(outbox)
            .where(outbox.c.id.in_(unique[start : start + _CHUNK]), outbox.c.published_at.is_(None))
            .values(published_at=when)
        )


def purge_published(session: Session, older_than: datetime) -> int:
    """Delete messages published before ``older_than``; returns how many. Unpublished
    messages are never purged."""
    write_staged(session)
    _aware("older_than", older_than)
    result = session.connection().execute(
        delete(outbox).where(outbox.c.published_at.is_not(None), outbox.c.published_at < older_than)
    )
    return int(getattr(result, "rowcount", 0))


def count_pending(session: Session) -> int:
    """Number of messages not yet published."""
    write_staged(session)
    return int(
        session.connection()
        .execute(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))
        .scalar_one()
    )

"""Transactional outbox: ordering, publication marks, purging, id allocation, validation."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event
from sqlalchemy.orm import Session

from gateway.store import Database, outbox

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def test_pending_returns_unpublished_messages_in_id_order(clean_db: Database) -> None:
    with clean_db.session() as s:
        first = outbox.append(s, "lockgate/credential/1/state", b'{"active":true}', retain=True)
        second = outbox.append(s, "lockgate/event", b"\x00\xff binary", qos=0)
    with clean_db.session() as s:
        third = outbox.append(s, "lockgate/event", b"", qos=2)
    assert first < second < third
    with clean_db.session(readonly=True) as s:
        messages = outbox.pending(s)
        assert outbox.count_pending(s) == 3
        assert outbox.pending(s, limit=2) == messages[:2]
    assert [(m.id, m.topic, m.payload, m.qos, m.retain) for m in messages] == [
        (first, "lockgate/credential/1/state", b'{"active":true}', 1, True),
        (second, "lockgate/event", b"\x00\xff binary", 0, False),
        (third, "lockgate/event", b"", 2, False),
    ]
    assert all(type(m.payload) is bytes for m in messages)
    assert all(m.created_at.tzinfo is UTC for m in messages)


def test_a_message_exists_only_if_its_transaction_commits(clean_db: Database) -> None:
    def fail() -> None:
        with clean_db.session() as s:
            outbox.append(s, "lockgate/event", b"lost")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        fail()
    with clean_db.session(readonly=True) as s:
        assert outbox.pending(s) == []


def test_published_messages_leave_the_queue_and_are_purged_later(clean_db: Database) -> None:
    with clean_db.session() as s:
        ids = [outbox.append(s, "lockgate/event", str(i).encode(), at=T0) for i in range(4)]
    with clean_db.session() as s:
        outbox.mark_published(s, ids[:2], at=T0 + timedelta(minutes=1))
        outbox.mark_published(s, [ids[0]], at=T0 + timedelta(hours=5))  # keeps the first mark
        outbox.mark_published(s, [999_999])  # unknown: ignored
        outbox.mark_published(s, [])
    with clean_db.session() as s:
        assert [m.id for m in outbox.pending(s)] == ids[2:]
        # the relay reads past rows it published but has not marked yet
        assert [m.id for m in outbox.pending(s, after_id=ids[2])] == ids[3:]
        with pytest.raises(ValueError, match="after_id"):
            outbox.pending(s, after_id="3")  # type: ignore[arg-type]
        assert outbox.count_pending(s) == 2
        assert outbox.purge_published(s, older_than=T0) == 0
        assert outbox.purge_published(s, older_than=T0 + timedelta(minutes=2)) == 2
        assert outbox.purge_published(s, older_than=T0 + timedelta(days=365)) == 0
        assert [m.id for m in outbox.pending(s)] == ids[2:]


def test_ids_increase_in_commit_order_and_are_never_reused(clean_db: Database) -> None:
    seen: list[int] = []
    for round_ in range(3):
        with clean_db.session() as s:
            seen.extend(outbox.append(s, "lockgate/event", b"x") for _ in range(3))
        with clean_db.session() as s:
            everything = [m.id for m in outbox.pending(s, limit=1000)]
            outbox.mark_published(s, everything, at=T0)
            assert outbox.purge_published(s, older_than=T0 + timedelta(seconds=1)) == 3, round_
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen) == 9


def test_many_ids_can_be_marked_at_once(clean_db: Database) -> None:
    with clean_db.session() as s:
        ids = [outbox.append(s, "lockgate/event", b"x") for _ in range(2_500)]
    with clean_db.session() as s:
        outbox.mark_published(s, ids)
        assert outbox.count_pending(s) == 0


@pytest.mark.parametrize(
    ("topic", "payload", "options", "error", "message"),
    [
        ("", b"x", {}, ValueError, "topic: must not be empty"),
        ("lockgate/+/state", b"x", {}, ValueError, "topic: wildcards"),
        ("lockgate/#", b"x", {}, ValueError, "topic: wildcards"),
        ("lock\x00gate", b"x", {}, ValueError, "topic: must not contain a NUL"),
        ("x" * 65536, b"x", {}, ValueError, "topic: longer than 65535 bytes"),
        ("lockgate/event", "text", {}, TypeError, "payload: must be bytes"),
        ("lockgate/event", b"x", {"qos": 3}, ValueError, "qos: must be 0, 1 or 2"),
        ("lockgate/event", b"x", {"qos": True}, ValueError, "qos: must be 0, 1 or 2"),
        ("lockgate/event", b"x", {"retain": 1}, TypeError, "retain: must be a bool"),
        ("lockgate/event", b"x", {"at": datetime(2026, 1, 1)}, ValueError, "at: must carry"),
    ],
)
def test_invalid_messages_are_refused_naming_the_field(
    clean_db: Database,
    topic: str,
    payload: bytes,
    options: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    with clean_db.session() as s:
        with pytest.raises(error, match=message):
            outbox.append(s, topic, payload, **options)  # type: ignore[arg-type]
        assert outbox.count_pending(s) == 0


def test_invalid_arguments_of_the_relay_side_are_refused(clean_db: Database) -> None:
    with clean_db.session() as s:
        with pytest.raises(ValueError, match="limit: must be a positive whole number"):
            outbox.pending(s, limit=0)
        with pytest.raises(TypeError, match="ids: message ids are integers"):
            outbox.mark_published(s, ["1"])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="older_than: must carry a time zone"):
            outbox.purge_published(s, datetime(2026, 1, 1))


def test_the_payload_of_an_unpublished_message_can_be_replaced(clean_db: Database) -> None:
    with clean_db.session() as s:
        message_id = outbox.append(s, "lockgate/event", b"{}")
        outbox.replace_payload(s, message_id, f'{{"id":{message_id}}}'.encode())
        assert [m.payload for m in outbox.pending(s)] == [f'{{"id":{message_id}}}'.encode()]
        outbox.mark_published(s, [message_id])
        with pytest.raises(LookupError, match=f"no unpublished message {message_id}"):
            outbox.replace_payload(s, message_id, b"late")
        with pytest.raises(TypeError, match="payload: must be bytes"):
            outbox.replace_payload(s, message_id, "text")  # type: ignore[arg-type]


def test_deferred_payloads_are_written_together_before_commit(clean_db: Database) -> None:
    statements: list[str] = []

    def record(_c: object, _cur: object, statement: str, *_: object) -> None:
        statements.append(statement)

    with clean_db.session() as s:
        ids = [outbox.append(s, "lockgate/event", b"{}") for _ in range(3)]
        event.listen(clean_db.engine, "before_cursor_execute", record)
        try:
            for i in ids:
                outbox.replace_payload(s, i, b'{"seq":%d}' % i, deferred=True)
            assert statements == []
            s.commit()
        finally:
            event.remove(clean_db.engine, "before_cursor_execute", record)
    assert len([q for q in statements if q.startswith("UPDATE outbox")]) == 1
    with clean_db.session(readonly=True) as s:
        assert [m.payload for m in outbox.pending(s)] == [b'{"seq":%d}' % i for i in ids]


def test_deferred_payloads_follow_savepoints_and_rollbacks(clean_db: Database) -> None:
    with clean_db.session() as s:
        kept = outbox.append(s, "lockgate/event", b"{}")
        outbox.replace_payload(s, kept, b"kept", deferred=True)
        with contextlib.suppress(_Undone), s.begin_nested():
            undone = outbox.append(s, "lockgate/event", b"{}")
            outbox.replace_payload(s, undone, b"undone", deferred=True)
            raise _Undone
        # SQLite may give the rolled back message's id again: it keeps its own payload.
        later = outbox.append(s, "lockgate/event", b"later")
        assert [m.payload for m in outbox.pending(s)] == [b"kept", b"later"]
    with contextlib.suppress(_Undone), clean_db.session() as s:
        lost = outbox.append(s, "lockgate/event", b"{}")
        outbox.replace_payload(s, lost, b"lost", deferred=True)
        raise _Undone
    with clean_db.session() as s:
        last = outbox.append(s, "lockgate/event", b"last")  # SQLite: the lost message's id
        extra = outbox.append(s, "lockgate/event", b"{}")
        outbox.replace_payload(s, extra, b"extra", deferred=True)
    with clean_db.session(readonly=True) as s:
        assert [(m.id, m.payload) for m in outbox.pending(s)] == [
            (kept, b"kept"),
            (later, b"later"),
            (last, b"last"),
            (extra, b"extra"),
        ]


class _Undone(Exception):
    pass


def _numbered_payload(seq: int) -> bytes:
    return b'{"seq":%d}' % seq


def test_numbered_messages_get_their_ids_in_queue_order_two_statements_for_all(
    clean_db: Database,
) -> None:
    statements: list[str] = []

    def record(_c: object, _cur: object, statement: str, *_: object) -> None:
        statements.append(statement.split(" ", 2)[0])

    with clean_db.session() as s:
        before = outbox.append(s, "lockgate/credential/1/state", b"before", retain=True)
        event.listen(clean_db.engine, "before_cursor_execute", record)
        try:
            for _ in range(3):
                outbox.append_numbered(s, "lockgate/event", _numbered_payload)
            assert statements == []  # nothing written while they are queued
            outbox.append_many(s, [("lockgate/credential/2/state", b"between")], retain=True)
            assert statements == ["INSERT", "UPDATE", "INSERT"]
            outbox.append_numbered(s, "lockgate/event", _numbered_payload, qos=2)
            s.commit()
        finally:
            event.remove(clean_db.engine, "before_cursor_execute", record)
    assert statements == ["INSERT", "UPDATE", "INSERT", "INSERT", "UPDATE"]
    with clean_db.session(readonly=True) as s:
        messages = outbox.pending(s)
    assert [(m.topic, m.qos, m.retain) for m in messages] == [
        ("lockgate/credential/1/state", 1, True),
        ("lockgate/event", 1, False),
        ("lockgate/event", 1, False),
        ("lockgate/event", 1, False),
        ("lockgate/credential/2/state", 1, True),
        ("lockgate/event", 2, False),
    ]
    assert messages[0].id == before
    assert [m.payload for m in messages] == [b"before"] + [
        _numbered_payload(m.id) for m in messages[1:4]
    ] + [b"between", _numbered_payload(messages[5].id)]


def test_numbered_messages_follow_savepoints_and_rollbacks(clean_db: Database) -> None:
    with clean_db.session() as s:
        outbox.append_numbered(s, "lockgate/event", _numbered_payload)
        with contextlib.suppress(_Undone), s.begin_nested():
            outbox.append_numbered(s, "lockgate/event", lambda seq: b"undone")
            raise _Undone
        outbox.append_numbered(s, "lockgate/event", lambda seq: b"later %d" % seq)
    with contextlib.suppress(_Undone), clean_db.session() as s:
        outbox.append_numbered(s, "lockgate/event", lambda seq: b"lost")
        raise _Undone
    with clean_db.session(readonly=True) as s:
        messages = outbox.pending(s)
    assert [m.payload for m in messages] == [
        _numbered_payload(messages[0].id),
        b"later %d" % messages[1].id,
    ]


def test_a_message_queued_after_the_outbox_was_written_fails_the_commit(
    clean_db: Database,
) -> None:
    def too_late(session: Session) -> None:
        outbox.append_numbered(session, "lockgate/event", lambda seq: b"too late")

    def commit_with_a_late_listener() -> None:
        with clean_db.session() as s:
            outbox.append(s, "lockgate/event", b"first")
            event.listen(s, "before_commit", too_late, once=True)

    with pytest.raises(RuntimeError, match="queued after"):
        commit_with_a_late_listener()
    with clean_db.session(readonly=True) as s:
        assert outbox.pending(s) == []


_QUEUE_OPS = st.lists(st.sampled_from(["append", "many", "numbered", "read"]), max_size=12)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_QUEUE_OPS)
def test_any_mix_of_appends_keeps_the_order_they_were_made_in(
    clean_db: Database, ops: list[str]
) -> None:
    with clean_db.session() as s:
        for published in outbox.pending(s, limit=1000):
            outbox.mark_published(s, [published.id])
    made: list[bytes] = []
    with clean_db.session() as s:
        for i, op in enumerate(ops):
            if op == "append":
                outbox.append(s, "lockgate/event", b"a%d" % i)
                made.append(b"a%d" % i)
            elif op == "many":
                outbox.append_many(s, [("lockgate/event", b"m%d" % i), ("lockgate/x", b"n%d" % i)])
                made += [b"m%d" % i, b"n%d" % i]
            elif op == "numbered":
                outbox.append_numbered(s, "lockgate/event", lambda seq, i=i: b"q%d:%d" % (i, seq))
                made.append(b"q%d" % i)
            else:
                outbox.count_pending(s)
    with clean_db.session(readonly=True) as s:
        messages = outbox.pending(s, limit=1000)
    assert [m.payload.split(b":")[0] for m in messages] == made
    for m in messages:
        if m.payload.startswith(b"q"):
            assert m.payload.split(b":")[1] == b"%d" % m.id


def test_recent_published_returns_the_newest_published_oldest_first(clean_db: Database) -> None:
    with clean_db.session() as s:
        ids = [outbox.append(s, f"lockgate/event/{i}", b"x", at=T0) for i in range(5)]
        outbox.mark_published(s, ids[:4], at=T0)
    with clean_db.session(readonly=True) as s:
        recent = outbox.recent_published(s, limit=3)
    assert [m.id for m in recent] == ids[1:4]
    assert all(m.created_at == T0 and m.created_at.tzinfo is UTC for m in recent)

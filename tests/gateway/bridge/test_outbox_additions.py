"""The two outbox functions the bridge added: ``replace_payload`` and ``recent_published``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.store import migrate, outbox
from gateway.store.database import Database


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    migrate.upgrade(db_url)
    database = Database(db_url)
    yield database
    database.dispose()


def test_replace_payload_changes_only_an_unpublished_message(db: Database) -> None:
    with db.session() as s:
        first = outbox.append(s, "a/events", b"{}")
        outbox.replace_payload(s, first, b'{"seq":%d}' % first)
        second = outbox.append(s, "a/events", b"{}")
    with db.session(readonly=True) as s:
        assert [m.payload for m in outbox.pending(s)] == [b'{"seq":%d}' % first, b"{}"]
    with db.session() as s:
        outbox.mark_published(s, [first])
    with db.session() as s, pytest.raises(LookupError, match="message_id"):
        outbox.replace_payload(s, first, b"late")
    with db.session() as s, pytest.raises(LookupError, match="message_id"):
        outbox.replace_payload(s, second + 100, b"nothing")
    with db.session() as s, pytest.raises(TypeError, match="payload"):
        outbox.replace_payload(s, second, "text")  # type: ignore[arg-type]
    with db.session() as s, pytest.raises(TypeError, match="message_id"):
        outbox.replace_payload(s, True, b"x")


def test_recent_published_returns_the_newest_published_oldest_first(db: Database) -> None:
    with db.session() as s:
        ids = [outbox.append(s, f"t/{i}", str(i).encode(), retain=i % 2 == 0) for i in range(6)]
        outbox.mark_published(s, ids[:4])
    with db.session(readonly=True) as s:
        recent = outbox.recent_published(s, limit=3)
        everything = outbox.recent_published(s, limit=100)
    assert [m.id for m in recent] == ids[1:4]
    assert [m.id for m in everything] == ids[:4]
    assert recent[1].retain is True
    assert recent[1].created_at.tzinfo is not None
    with db.session(readonly=True) as s, pytest.raises(ValueError, match="limit"):
        outbox.recent_published(s, limit=0)

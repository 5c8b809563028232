"""Inbox: processed request ids make inbound requests idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from gateway.domain import Conflict
from gateway.store import Database, InboxEntry, inbox

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
RESPONSE: dict[str, Any] = {
    "request_id": "r-1",
    "status": "ok",
    "data": {"credential": "123456789", "spaces": ["s1", "s2"], "count": 2, "ratio": 0.5},
    "error": None,
}


def test_a_recorded_request_is_found_with_its_response(clean_db: Database) -> None:
    at = T0.astimezone(timezone(timedelta(hours=2)))
    with clean_db.session() as s:
        assert inbox.lookup(s, "r-1") is None
        inbox.record(s, "r-1", "credential/activate", RESPONSE, at)
    with clean_db.session(readonly=True) as s:
        entry = inbox.lookup(s, "r-1")
    assert entry == InboxEntry("r-1", "credential/activate", RESPONSE, T0)
    assert entry is not None
    assert entry.received_at.tzinfo is UTC


def test_tuples_in_a_response_come_back_as_lists(clean_db: Database) -> None:
    with clean_db.session() as s:
        inbox.record(s, "r-1", "k", {"spaces": ("s1", "s2")}, T0)
        entry = inbox.lookup(s, "r-1")
    assert entry is not None
    assert entry.response == {"spaces": ["s1", "s2"]}


def test_recording_a_request_twice_is_a_conflict(clean_db: Database) -> None:
    with clean_db.session() as s:
        inbox.record(s, "r-1", "credential/activate", RESPONSE, T0)
        with pytest.raises(Conflict, match="already recorded") as info:
            inbox.record(s, "r-1", "credential/activate", RESPONSE, T0)
        assert info.value.field == "request_id"


def test_a_record_exists_only_if_its_transaction_commits(clean_db: Database) -> None:
    def fail() -> None:
        with clean_db.session() as s:
            inbox.record(s, "r-1", "credential/activate", RESPONSE, T0)
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        fail()
    with clean_db.session(readonly=True) as s:
        assert inbox.lookup(s, "r-1") is None


def test_prune_forgets_only_older_requests(clean_db: Database) -> None:
    with clean_db.session() as s:
        for i in range(5):
            inbox.record(s, f"r-{i}", "k", {"i": i}, T0 + timedelta(days=i))
    with clean_db.session() as s:
        assert inbox.prune(s, T0 + timedelta(days=2)) == 2
        assert inbox.prune(s, T0 + timedelta(days=2)) == 0
        assert [inbox.lookup(s, f"r-{i}") is None for i in range(5)] == [
            True,
            True,
            False,
            False,
            False,
        ]


@pytest.mark.parametrize(
    ("request_id", "kind", "response", "received_at", "error", "message"),
    [
        ("", "k", {}, T0, ValueError, "request_id: must be non-empty"),
        (" r-1", "k", {}, T0, ValueError, "request_id: must be non-empty without"),
        ("r" * 201, "k", {}, T0, ValueError, "request_id: at most 200 characters"),
        ("r\n1", "k", {}, T0, ValueError, "request_id: must not contain control"),
        (1, "k", {}, T0, TypeError, "request_id: must be a string"),
        ("r-1", "", {}, T0, ValueError, "kind: must be non-empty"),
        ("r-1", "k", [], T0, TypeError, "response: must be a dict"),
        ("r-1", "k", {"x": float("nan")}, T0, ValueError, "response.x: nan cannot be stored"),
        ("r-1", "k", {"x": {1: "a"}}, T0, TypeError, "response.x: keys must be strings"),
        ("r-1", "k", {"x": ["a\x00"]}, T0, ValueError, r"response.x\[0\]: must not contain a NUL"),
        ("r-1", "k", {"x": {1, 2}}, T0, TypeError, "response.x: set cannot be stored"),
        ("r-1", "k", {}, datetime(2026, 1, 1), ValueError, "received_at: must carry a time"),
    ],
)
def test_invalid_records_are_refused_naming_the_field(
    clean_db: Database,
    request_id: Any,
    kind: str,
    response: Any,
    received_at: datetime,
    error: type[Exception],
    message: str,
) -> None:
    with clean_db.session() as s:
        with pytest.raises(error, match=message):
            inbox.record(s, request_id, kind, response, received_at)
        assert inbox.prune(s, T0 + timedelta(days=1)) == 0  # nothing was stored


def test_prune_needs_an_aware_time(clean_db: Database) -> None:
    with clean_db.session() as s, pytest.raises(ValueError, match="older_than: must carry"):
        inbox.prune(s, datetime(2026, 1, 1))


def test_many_ids_are_looked_up_at_once_whatever_their_number(clean_db: Database) -> None:
    recorded = [f"req-{i}" for i in range(0, 1200, 2)]
    with clean_db.session() as s:
        inbox.record_many(
            s, [InboxEntry(r, "person/put", {"status": "ok", "n": r}, T0) for r in recorded]
        )
    wanted = [f"req-{i}" for i in range(1200)] + ["req-0", "req-2", "unknown"]
    with clean_db.session(readonly=True) as s:
        found = inbox.lookup_many(s, wanted)
        assert inbox.lookup_many(s, []) == {}
        assert set(inbox.lookup_many(s, ["req-1", "req-4"])) == {"req-4"}
    assert set(found) == set(recorded)
    assert all(e.response == {"status": "ok", "n": r} for r, e in found.items())


def test_a_requests_digest_is_kept_stable_across_versions() -> None:
    # Stored digests tell a replay from a reused id: the text they hash must never change
    # (SHA-256 of the canonical JSON: keys sorted, no spaces, characters as they are).
    body = {"b": "é", "a": [1, 2.5, None, True]}
    assert inbox.digest("credential/activate", body) == (
        "2ecb57d20366f8064c89e563f883f6fb97441337e4e48fdaefb043c1ba4353eb"
    )

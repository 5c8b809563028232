"""Derived state: credential and controller states, cylinder blacklists with versions."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from gateway.store import (
    Database,
    StoredBlacklist,
    StoredControllerState,
    StoredCredentialState,
    desired,
)

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
BODY: dict[str, Any] = {
    "grants": [{"space": "s1", "window": {"from": "2026-01-01T00:00:00+00:00", "until": None}}],
    "reasons": [],
    "name": "Nyckel för Åsa",
    "revalidation_days": 7,
    "ratio": 0.25,
    "nested": {"deep": [1, [2, [3]], {"x": True}]},
}


def _credential(number: str, revision: str = "r1", **changes: Any) -> StoredCredentialState:
    values: dict[str, Any] = {
        "number": number,
        "kind": "key",
        "revision": revision,
        "active": True,
        "body": BODY,
        "computed_at": T0,
    } | changes
    return StoredCredentialState(**values)


def test_credential_states_are_upserted_read_and_deleted(clean_db: Database) -> None:
    local = T0.astimezone(timezone(timedelta(hours=-5)))
    with clean_db.session() as s:
        desired.put_credential_state(s, _credential("100000002"))
        desired.put_credential_state(s, _credential("100000001", computed_at=local))
        desired.put_credential_state(s, _credential("100000002", "r2", active=False, body={}))
    with clean_db.session() as s:
        assert desired.get_credential_state(s, "100000001") == _credential("100000001")
        assert desired.all_credential_states(s) == [
            _credential("100000001"),
            _credential("100000002", "r2", active=False, body={}),
        ]
        stored = desired.get_credential_state(s, "100000001")
        assert stored is not None
        assert stored.computed_at.tzinfo is UTC
        desired.delete_credential_state(s, "100000001")
        desired.delete_credential_state(s, "100000001")  # already gone: nothing happens
        assert desired.get_credential_state(s, "100000001") is None
        assert [c.number for c in desired.all_credential_states(s)] == ["100000002"]


def test_controller_states_are_upserted_read_and_deleted(clean_db: Database) -> None:
    first = StoredControllerState("ctrl-1", "r1", {"entries": 3}, T0)
    second = StoredControllerState("ctrl-1", "r2", {"entries": 4}, T0 + timedelta(minutes=1))
    other = StoredControllerState("ctrl-0", "r1", BODY, T0)
    with clean_db.session() as s:
        desired.put_controller_state(s, first)
        desired.put_controller_state(s, other)
        desired.put_controller_state(s, second)
    with clean_db.session() as s:
        assert desired.get_controller_state(s, "ctrl-1") == second
        assert desired.all_controller_states(s) == [other, second]
        desired.delete_controller_state(s, "ctrl-0")
        assert desired.get_controller_state(s, "ctrl-0") is None
        assert desired.get_controller_state(s, "missing") is None


def test_a_blacklist_version_bumps_only_when_its_revision_changes(clean_db: Database) -> None:
    with clean_db.session() as s:
        assert desired.get_blacklist(s, "1001") is None
        v1 = desired.put_blacklist(s, "1001", ("100000001",), "rev-a", T0)
    assert v1 == StoredBlacklist("1001", 1, ("100000001",), "rev-a", T0)
    with clean_db.session() as s:
        same = desired.put_blacklist(s, "1001", ("100000001",), "rev-a", T0 + timedelta(hours=1))
        assert same == v1  # unchanged, computed_at included
        assert desired.get_blacklist(s, "1001") == v1
    later = T0 + timedelta(hours=2)
    with clean_db.session() as s:
        v2 = desired.put_blacklist(s, "1001", ("100000001", "100000002"), "rev-b", later)
        v3 = desired.put_blacklist(s, "1001", (), "rev-c", later)
        other = desired.put_blacklist(s, "1002", ("100000003",), "rev-a", later)
    assert (v2.version, v2.serials, v2.revision) == (2, ("100000001", "100000002"), "rev-b")
    assert (v3.version, v3.serials) == (3, ())
    assert other.version == 1
    with clean_db.session(readonly=True) as s:
        assert desired.all_blacklists(s) == [v3, other]
        assert desired.get_blacklist(s, "1001") == v3


def test_a_large_blacklist_round_trips_in_order(clean_db: Database) -> None:
    serials = tuple(f"{900000000 - i}" for i in range(5_000))
    with clean_db.session() as s:
        desired.put_blacklist(s, "7", serials, "big", T0)
    with clean_db.session(readonly=True) as s:
        stored = desired.get_blacklist(s, "7")
    assert stored is not None
    assert stored.serials == serials


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"number": "12a"}, ValueError, "number: must be digits"),
        ({"number": ""}, ValueError, "number: must not be empty"),
        ({"number": "12345678901"}, ValueError, "number: at most 10 characters"),
        ({"kind": ""}, ValueError, "kind: must not be empty"),
        ({"revision": "r" * 129}, ValueError, "revision: at most 128 characters"),
        ({"active": 1}, TypeError, "active: must be a bool"),
        ({"body": {"x": float("inf")}}, ValueError, "body.x: inf cannot be stored"),
        ({"body": {"when": T0}}, TypeError, "body.when: datetime cannot be stored"),
        ({"computed_at": datetime(2026, 1, 1)}, ValueError, "computed_at: must carry"),
    ],
)
def test_invalid_credential_states_are_refused_naming_the_field(
    clean_db: Database, changes: dict[str, Any], error: type[Exception], message: str
) -> None:
    state = StoredCredentialState(**(asdict(_credential("100000001")) | changes))
    with clean_db.session() as s:
        with pytest.raises(error, match=message):
            desired.put_credential_state(s, state)
        assert desired.all_credential_states(s) == []


@pytest.mark.parametrize(
    ("cylinder", "serials", "revision", "at", "error", "message"),
    [
        ("x1", (), "r", T0, ValueError, "cylinder: must be digits"),
        ("1", ["100000001"], "r", T0, TypeError, "serials: must be a tuple"),
        ("1", ("12 3",), "r", T0, ValueError, "serials: a key serial is a string of digits"),
        ("1", (), "", T0, ValueError, "revision: must not be empty"),
        ("1", (), "r", datetime(2026, 1, 1), ValueError, "at: must carry a time zone"),
    ],
)
def test_invalid_blacklists_are_refused_naming_the_field(
    clean_db: Database,
    cylinder: str,
    serials: Any,
    revision: str,
    at: datetime,
    error: type[Exception],
    message: str,
) -> None:
    with clean_db.session() as s:
        with pytest.raises(error, match=message):
            desired.put_blacklist(s, cylinder, serials, revision, at)
        assert desired.all_blacklists(s) == []


def test_invalid_controller_states_are_refused_naming_the_field(clean_db: Database) -> None:
    with clean_db.session() as s:
        with pytest.raises(ValueError, match="controller_id: at most 64 characters"):
            desired.put_controller_state(s, StoredControllerState("c" * 65, "r", {}, T0))
        with pytest.raises(TypeError, match="body: must be a dict"):
            desired.put_controller_state(s, StoredControllerState("c", "r", [], T0))  # type: ignore[arg-type]
        assert desired.all_controller_states(s) == []

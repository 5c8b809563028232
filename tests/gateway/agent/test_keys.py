"""The agent's key cache keeps only the newest image of each key and remembers which revision
was which version; a station's reports wait in the outbox, a confirmation that disables a key
first, taking that key's visits and failed writes along, and one confirmation per key;
every failed write is queued."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.agent.keys import AgentKeys
from gateway.agent.local import EVENT, REVOCATION, UPDATE, AgentStore
from gateway.bridge.sitepayloads import SiteKeyImage


def image(serial: str, version: int, revision: str, *, enabled: bool = True) -> SiteKeyImage:
    return SiteKeyImage.model_validate(
        {
            "site": "north",
            "serial": serial,
            "version": version,
            "revoking": not enabled,
            "image": {"serial": serial, "revision": revision, "enabled": enabled},
            "issued_at": datetime.now(UTC),
        }
    )


def confirmation(serial: str, version: int, revision: str, enabled: bool) -> dict[str, Any]:
    return {
        "station": "wall",
        "serial": serial,
        "version": version,
        "revision": revision,
        "written": True,
        "enabled": enabled,
        "at": datetime.now(UTC).isoformat(),
    }


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[AgentKeys]:
    store = AgentStore(tmp_path / "agent.db", "north")
    yield AgentKeys(store)
    store.close()


def test_only_a_newer_image_replaces_the_cached_one(keys: AgentKeys) -> None:
    assert keys.offer(image("k1", 5, "aa"))
    assert not keys.offer(image("k1", 5, "bb")), "a repeated version changes nothing"
    assert not keys.offer(image("k1", 4, "cc")), "an older version changes nothing"
    cached = keys.cached("k1")
    assert cached is not None and cached.image is not None and cached.image.revision == "aa"
    assert keys.offer(image("k1", 6, "dd", enabled=False))
    assert keys.cached("k1") == image("k1", 6, "dd", enabled=False).model_copy(
        update={"issued_at": keys.cached("k1").issued_at}  # type: ignore[union-attr]
    )
    assert (keys.version_of("k1", "aa"), keys.version_of("k1", "dd")) == (5, 6)
    assert keys.version_of("k1", "cc") is None
    assert keys.serials() == ["k1"]


def test_a_disabling_confirmation_goes_first_with_the_visits_of_its_key(
    keys: AgentKeys,
) -> None:
    store = keys.store
    store.note({"kind": "availability", "controller": "c1", "at": "x"}, None)
    held: dict[str, Any] = {"serial": "k1", "revision": "aa", "enabled": True}
    keys.visited("wall", "k2", held | {"serial": "k2"}, [], datetime.now(UTC))
    keys.visited("wall", "k1", held, [], datetime.now(UTC))
    blacklist = [{"outcome": "blacklist_applied", "cylinder": 7, "blacklist_version": 3}]
    keys.visited("wall", "k3", held | {"serial": "k3"}, blacklist, datetime.now(UTC))
    assert [(p.priority, p.payload["serial"]) for p in store.pending()[:3]] == [
        (REVOCATION, "k3"),  # it carries a cylinder's blacklist confirmation
        (UPDATE, "k2"),
        (UPDATE, "k1"),
    ]
    keys.confirmed(confirmation("k1", 6, "dd", enabled=True))
    keys.confirmed(confirmation("k1", 7, "ee", enabled=False))  # replaces the one above
    order = [(p.priority, p.topic, p.payload.get("serial")) for p in store.pending()]
    assert order == [
        (REVOCATION, "site_key_visit", "k1"),  # queued before k3's, in its order
        (REVOCATION, "site_key_visit", "k3"),
        (REVOCATION, "site_key_confirm", "k1"),
        (UPDATE, "site_key_visit", "k2"),
        (EVENT, "site_events", None),
    ]
    assert keys.version_of("k1", "ee") == 7 and keys.version_of("k1", "dd") == 6


def test_every_failed_write_is_queued_and_a_disabling_confirmation_takes_them_along(
    keys: AgentKeys,
) -> None:
    store = keys.store
    failure = {"station": "wall", "serial": "k1", "outcome": "pulled", "error": "removed"}
    keys.failed(failure | {"at": "t1"})
    keys.failed(failure | {"at": "t2"})  # one more, not a replacement
    keys.failed(failure | {"serial": "k2", "at": "t3"})
    order = [(p.priority, p.topic, p.payload["serial"], p.payload["at"]) for p in store.pending()]
    assert order == [
        (UPDATE, "site_key_failed", "k1", "t1"),
        (UPDATE, "site_key_failed", "k1", "t2"),
        (UPDATE, "site_key_failed", "k2", "t3"),
    ]
    keys.confirmed(confirmation("k1", 7, "ee", enabled=False))
    order = [(p.priority, p.topic, p.payload["serial"]) for p in store.pending()]
    assert order == [
        (REVOCATION, "site_key_failed", "k1"),
        (REVOCATION, "site_key_failed", "k1"),
        (REVOCATION, "site_key_confirm", "k1"),
        (UPDATE, "site_key_failed", "k2"),
    ]

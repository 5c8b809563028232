"""The agent's local store accepts desired documents in order only, refuses malformed,
foreign, stale and out-of-order ones with a reason naming the field, and keeps its last good
state; its outbox keeps messages until acknowledged, revocations first; the file has an id
of its own that names its messages."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.agent.local import EVENT, REVOCATION, UPDATE, AgentStore, Refused
from gateway.agent.outbox import wire_messages
from gateway.bridge.sitepayloads import SiteAck, SiteConfirms, SiteEvent, dump
from gateway.bridge.topics import TopicMap

NOW = datetime.now(UTC).isoformat()


def doc(revision: int, base: int | None = None, site: str = "north", **controllers: Any) -> bytes:
    return json.dumps(
        {
            "site": site,
            "revision": revision,
            "base": base,
            "issued_at": datetime.now(UTC).isoformat(),
            "controllers": {
                cid: {
                    "revision": rev,
                    "entries": [{"credential": int(n), "doors_mask": 3} for n in numbers],
                }
                for cid, (rev, numbers) in controllers.items()
            },
        }
    ).encode()


@pytest.fixture
def store(tmp_path: Path) -> AgentStore:
    s = AgentStore(tmp_path / "agent.db", "north")
    yield s  # type: ignore[misc]
    s.close()


def test_a_full_document_then_deltas_in_order_are_held(store: AgentStore) -> None:
    store.accept(doc(1, None, n1=("a", ["1", "2"]), n2=("b", ["1"])))
    store.accept(doc(2, 1, n1=("c", ["2"])))
    assert store.revision() == 2
    n1, n2 = store.desired("n1"), store.desired("n2")
    assert n1 is not None and n1.revision == "c" and [e.credential for e in n1.entries] == [2]
    assert n2 is not None and n2.revision == "b"
    # a full document replaces everything: a controller it leaves out is no longer desired
    store.accept(doc(5, None, n2=("d", [])))
    assert store.desired("n1") is None
    assert store.revision() == 5


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "malformed document"),
        (doc(3, None, site="south", n1=("x", [])), "site: document for site 'south'"),
        (doc(2, None, n1=("x", [])), "revision: 2 is not newer than the held 2"),
        (doc(1, None, n1=("x", [])), "revision: 1 is not newer"),
        (doc(4, 3, n1=("x", [])), "base: delta against revision 3, the agent holds 2"),
        (doc(3, 3, n1=("x", [])), "base: must be below revision"),
        (
            json.dumps(
                {
                    "site": "north",
                    "revision": 3,
                    "issued_at": "2026-01-01T00:00:00Z",
                    "controllers": {
                        "n1": {"revision": "x", "entries": [{"credential": -1, "doors_mask": 1}]}
                    },
                }
            ).encode(),
            "controllers.n1.entries.0.credential",
        ),
        (
            json.dumps({"site": "north", "revision": 3, "controllers": {}}).encode(),
            "issued_at: Field required",
        ),
    ],
)
def test_a_bad_document_is_refused_with_its_reason_and_changes_nothing(
    store: AgentStore, raw: bytes, reason: str
) -> None:
    store.accept(doc(1, None, n1=("a", ["1", "2"])))
    store.accept(doc(2, 1, n1=("b", ["1"])))
    with pytest.raises(Refused, match=re.escape(reason)):
        store.accept(raw)
    assert store.revision() == 2
    held = store.desired("n1")
    assert held is not None and held.revision == "b"


def test_the_state_file_belongs_to_one_site(tmp_path: Path) -> None:
    AgentStore(tmp_path / "a.db", "north").close()
    with pytest.raises(ValueError, match=r"--site: the state file .* belongs to site 'north'"):
        AgentStore(tmp_path / "a.db", "south")


def test_the_outbox_sends_revocations_first_and_keeps_until_acknowledged(
    tmp_path: Path,
) -> None:
    store = AgentStore(tmp_path / "agent.db", "north")
    try:
        at = datetime.now(UTC).isoformat()
        store.forget("n1", 7)
        store.forget("n2", 7)
        store.confirm("n1", "a", 1, 7, ["1", "2"], 2, 3.0, at)
        store.confirm("n2", "b", 2, 7, ["1"], 1, 3.0, at)
        store.note({"kind": "availability", "controller": "n1", "online": True, "at": at}, "av")
        # n1 loses credential 2: this confirmation replaces the one not yet sent, and revokes
        assert store.confirm("n1", "c", 3, 7, ["1"], 1, 3.0, at) is True
        pending = store.pending()
        assert [(p.priority, p.payload.get("revision")) for p in pending] == [
            (REVOCATION, "c"),
            (UPDATE, "b"),
            (EVENT, None),
        ]
        assert store.acknowledged([pending[0].seq, 999]) == 1
        assert store.waiting() == 2
    finally:
        store.close()
    # the outbox and the confirmed state survive a restart
    again = AgentStore(tmp_path / "agent.db", "north")
    try:
        assert again.waiting() == 2
        confirmed = again.confirmed("n1")
        assert confirmed is not None and confirmed.revision == "c"
        assert confirmed.credentials == ("1",)
    finally:
        again.close()


def test_a_confirmation_replacing_an_unacknowledged_revoking_one_keeps_its_priority(
    store: AgentStore,
) -> None:
    def confirm(revision: str, numbers: list[str]) -> None:
        store.confirm("n1", revision, 1, 1, numbers, len(numbers), 1.0, "x")

    confirm("a", ["1", "2"])
    store.acknowledged([p.seq for p in store.pending()])
    confirm("b~rev", ["2"])  # takes 1 away
    confirm("b", ["2", "3"])  # adds 3, replacing the unsent one: the core never saw 1 go
    assert [(p.priority, p.payload["revision"]) for p in store.pending()] == [(REVOCATION, "b")]


def test_every_opening_queues_under_a_new_store_id_and_rows_keep_theirs(tmp_path: Path) -> None:
    """A new store id every time the file is opened (a restored copy included); a row keeps
    the id it was queued under, and a confirmation queued under an older id names it in a
    message of the newer one. The outbox's lowest sequence number only grows."""
    path = tmp_path / "agent.db"
    first = AgentStore(path, "north")
    made = first.store_id
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert first.oldest() is None
    for n in range(3):
        first.note({"kind": "availability", "controller": f"c{n}", "online": True}, None)
    seqs = [p.seq for p in first.pending()]
    assert first.oldest() == seqs[0]
    first.acknowledged(seqs[:2])
    assert first.oldest() == seqs[2]
    first.acknowledged(seqs[2:])
    first.note({"kind": "availability", "controller": "c9", "online": True, "at": NOW}, None)
    first.confirm("n1", "a", 1, 7, ["1"], 1, 3.0, NOW)
    assert first.oldest() == seqs[2] + 1
    first.close()
    backup = tmp_path / "backup.db"
    shutil.copy(path, backup)

    again = AgentStore(path, "north")
    assert again.store_id != made and again.file_id == first.file_id
    assert {p.store for p in again.pending()} == {made}
    again.confirm("n2", "b", 1, 7, ["2"], 1, 3.0, NOW)
    messages = wire_messages(
        "north", TopicMap("lockgate"), again.pending(), store=again.store_id, oldest=again.oldest()
    )
    confirms, event = [json.loads(raw) for _, raw in messages]
    assert (event["store"], event["oldest"], event["seq"]) == (made, seqs[2] + 1, seqs[2] + 1)
    SiteEvent.model_validate(event)
    assert confirms["store"] == again.store_id
    assert [(c.get("store"), c["controller"]) for c in confirms["confirms"]] == [
        (made, "n1"),
        (None, "n2"),
    ]
    SiteConfirms.model_validate(confirms)
    restarted = again.store_id
    (reused,) = [p.seq for p in again.pending() if p.payload["controller"] == "n2"]
    again.close()

    # the copy made before: its numbers come again, under an id of their own
    shutil.copy(backup, path)
    restored = AgentStore(path, "north")
    assert restored.store_id not in (made, restarted)
    restored.confirm("n2", "c", 1, 7, ["3"], 1, 3.0, NOW)
    (row,) = [p for p in restored.pending() if p.payload["controller"] == "n2"]
    assert (row.seq, row.store) == (reused, restored.store_id)  # the number, not the name
    # the lost timeline's acknowledgement of that number, arriving late, drops nothing
    assert restored.acknowledged([reused], restarted) == 0
    assert restored.acknowledged([reused], restored.store_id) == 1
    restored.close()

    fresh = AgentStore(tmp_path / "other.db", "north")
    assert fresh.store_id != made and fresh.file_id != first.file_id
    fresh.close()


def test_a_state_file_of_the_version_before_keeps_the_names_of_its_rows(tmp_path: Path) -> None:
    """Rows queued before each row kept its store id are named by the file's id, as they were
    sent then; rows queued since by the new opening's id."""
    path = tmp_path / "agent.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        create table meta (key text primary key, value text not null);
        create table outbox (
            seq integer primary key autoincrement, priority integer not null,
            topic text not null, coalesce_key text unique, payload text not null);
        insert into meta values ('site', 'north'), ('store', 'f00d');
        insert into outbox (priority, topic, payload) values (2, 'site_events', '{"a": 1}');
        """
    )
    db.commit()
    db.close()
    store = AgentStore(path, "north")
    store.note({"kind": "availability", "controller": "c1", "online": True, "at": NOW}, None)
    assert [(p.seq, p.store) for p in store.pending()] == [(1, "f00d"), (2, store.store_id)]
    assert store.store_id != "f00d"
    assert store.acknowledged([1, 2], "f00d") == 1
    assert [p.seq for p in store.pending()] == [2]
    store.close()


def test_an_acknowledgement_names_the_store_id_only_when_it_has_one() -> None:
    """Agents before store ids refuse a field they do not know."""
    assert json.loads(dump(SiteAck(site="north", seqs=[1]))) == {"site": "north", "seqs": [1]}
    named = json.loads(dump(SiteAck(site="north", store="ab", seqs=[1])))
    assert named == {"site": "north", "store": "ab", "seqs": [1]}

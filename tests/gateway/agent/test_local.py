"""The agent's local store accepts desired documents in order only, refuses malformed,
foreign, stale and out-of-order ones with a reason naming the field, and keeps its last good
state; its outbox keeps messages until acknowledged, revocations first; the file has an id
of its own that names its messages."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.agent.local import EVENT, REVOCATION, UPDATE, AgentStore, Refused
from gateway.agent.outbox import wire_messages
from gateway.bridge.sitepayloads import SiteEvent
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


def test_the_state_file_has_an_id_of_its_own_and_names_every_message(tmp_path: Path) -> None:
    """The id is made with the file and kept in it; a new file gets a new one. The outbox's
    lowest sequence number only grows: numbers are never reused."""
    first = AgentStore(tmp_path / "agent.db", "north")
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
    assert first.oldest() == seqs[2] + 1
    first.close()

    again = AgentStore(tmp_path / "agent.db", "north")
    assert again.store_id == made
    messages = wire_messages(
        "north", TopicMap("lockgate"), again.pending(), store=again.store_id, oldest=again.oldest()
    )
    (body,) = [json.loads(raw) for _, raw in messages]
    assert (body["store"], body["oldest"], body["seq"]) == (made, seqs[2] + 1, seqs[2] + 1)
    SiteEvent.model_validate(body)
    again.close()

    fresh = AgentStore(tmp_path / "other.db", "north")
    assert fresh.store_id != made
    fresh.close()

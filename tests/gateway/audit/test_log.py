"""The hash chain in the store: appended, verified, erased, and tampering caught (direct SQL
on SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.orm import Session

from gateway.audit import log as audit_log
from gateway.audit.anchor import (
    ANCHOR_MISMATCH,
    TRUNCATED,
    AnchorFileError,
    check_anchors,
    read_anchors,
    write_anchor,
)
from gateway.audit.chain import GENESIS, canonical, entry_hash, personal_digest
from gateway.store.database import Database
from tests.gateway.audit.util import NOW, database


def fill(db: Database, n: int = 5) -> None:
    with db.session() as s:
        for i in range(1, n + 1):
            audit_log.append(
                s,
                at=NOW + timedelta(seconds=i),
                actor="kari",
                action="visitor_card_issue",
                subjects=[f"credential {5000000 + i}", "employment emp-anna"],
                data={"status": "ok", "n": i, "valid_until": "2026-11-25T16:00:00+00:00"},
                personal={"holder_name": f"Visitor {i}", "company": "Hiss AB", "mobile": "+4670"}
                if i % 2
                else None,
            )


def verify(db: Database) -> audit_log.Verification:
    with db.session(readonly=True) as s:
        return audit_log.verify(s)


def sql(db: Database, statement: str) -> None:
    """Run SQL as written, behind the application's back."""
    with db.session() as s:
        s.connection().exec_driver_sql(statement)


def test_appended_entries_form_a_chain_that_verifies(db: Database) -> None:
    fill(db)
    result = verify(db)
    assert result.ok and result.entries == 5
    with db.session(readonly=True) as s:
        rows = audit_log.entries(s)
    assert [e.seq for e in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.hash
    assert result.head is not None and result.head.hash == rows[-1].hash
    first = rows[0]
    assert first.personal == {"holder_name": "Visitor 1", "company": "Hiss AB", "mobile": "+4670"}
    assert first.subjects == ["credential 5000001", "employment emp-anna"]
    # the hash is SHA-256 over the documented fields, with data as its stored canonical text
    assert first.hash == entry_hash(
        seq=1,
        at=first.at,
        actor="kari",
        action="visitor_card_issue",
        subject="credential 5000001; employment emp-anna",
        data_text=canonical(first.data),
        personal_digest=first.personal_digest,
        prev_hash=GENESIS,
    )


def test_an_empty_log_verifies(db: Database) -> None:
    result = verify(db)
    assert result.ok and result.entries == 0 and result.head is None


@pytest.mark.parametrize(
    ("statement", "seq", "kind"),
    [
        (
            "UPDATE audit_entry SET data = replace(data, '\"n\":3', '\"n\":4') WHERE seq = 3",
            3,
            audit_log.ALTERED,
        ),
        ("UPDATE audit_entry SET actor = 'someone' WHERE seq = 2", 2, audit_log.ALTERED),
        (
            "UPDATE audit_entry SET at = at + interval '1 second' WHERE seq = 4",
            4,
            audit_log.ALTERED,
        ),
        ("DELETE FROM audit_entry WHERE seq = 3", 3, audit_log.MISSING),
        ("DELETE FROM audit_entry WHERE seq IN (1, 2)", 1, audit_log.MISSING),
        (
            "UPDATE audit_entry SET personal = replace(personal, 'Visitor 3', 'Visitor 9') "
            "WHERE seq = 3",
            3,
            audit_log.PERSONAL_ALTERED,
        ),
        (
            "DELETE FROM audit_subject WHERE seq = 4 AND subject = 'credential 5000004'",
            4,
            audit_log.INDEX_ALTERED,
        ),
        ("UPDATE audit_entry SET personal_digest = NULL WHERE seq = 5", 5, audit_log.ALTERED),
    ],
)
def test_tampering_with_the_database_is_caught_and_named(
    db: Database, statement: str, seq: int, kind: str
) -> None:
    fill(db)
    if "interval" in statement and db.dialect == "sqlite":
        statement = "UPDATE audit_entry SET at = datetime(at, '+1 second') WHERE seq = 4"
    sql(db, statement)
    result = verify(db)
    assert result.problem is not None
    assert (result.problem.seq, result.problem.kind) == (seq, kind)
    assert f"entr{'ies' if kind == audit_log.MISSING and seq == 1 else 'y'} {seq}" in (
        result.problem.message
    )


def test_swapping_two_entries_is_caught(db: Database) -> None:
    fill(db)
    columns = (
        "at",
        "actor",
        "action",
        "subject",
        "data",
        "personal",
        "personal_salt",
        "personal_digest",
        "prev_hash",
        "hash",
    )
    with db.session() as s:
        rows = {r.seq: r for r in s.execute(text("SELECT * FROM audit_entry WHERE seq IN (2, 3)"))}
        assignments = ", ".join(f"{c} = :{c}" for c in columns)
        for seq, other in ((2, 3), (3, 2)):
            s.execute(
                text(f"UPDATE audit_entry SET {assignments} WHERE seq = :seq"),
                {**{c: getattr(rows[other], c) for c in columns}, "seq": seq},
            )
    problem = verify(db).problem
    assert problem is not None and problem.seq == 2 and problem.kind == audit_log.ALTERED


def test_a_recomputed_entry_still_breaks_the_link_to_the_next(db: Database) -> None:
    """An attacker who recomputes the hash of the entry they changed breaks the next link."""
    fill(db)
    with db.session() as s:
        row = s.execute(text("SELECT * FROM audit_entry WHERE seq = 2")).one()
        forged_data = row.data.replace('"n":2', '"n":7')
        forged = entry_hash(
            seq=2,
            at=audit_log.entries(s, after_seq=1, limit=1)[0].at,
            actor=row.actor,
            action=row.action,
            subject=row.subject,
            data_text=forged_data,
            personal_digest=row.personal_digest,
            prev_hash=row.prev_hash,
        )
        s.execute(
            text("UPDATE audit_entry SET data = :d, hash = :h WHERE seq = 2"),
            {"d": forged_data, "h": forged},
        )
    problem = verify(db).problem
    assert problem is not None
    assert (problem.seq, problem.kind) == (3, audit_log.LINK_BROKEN)


def erase(db: Database, at: datetime, **which: Any) -> list[int]:
    """Erase as the gateway does: the personal parts, and an entry recording the erasure."""
    with db.session() as s:
        seqs = audit_log.erase_personal(s, at=at, **which)
        if seqs:
            audit_log.append(
                s,
                at=at,
                actor="lockgate-retention",
                action="retention.run",
                data={audit_log.ERASED_ENTRIES: audit_log.seq_ranges(seqs)},
            )
    return seqs


def test_erasure_removes_personal_data_and_keeps_the_chain_valid(db: Database) -> None:
    fill(db)
    with db.session() as s:
        before = {e.seq: e for e in audit_log.entries(s)}
    erased = erase(db, NOW + timedelta(days=1), subjects=["credential 5000003"])
    assert erased == [3]
    assert verify(db).ok
    with db.session(readonly=True) as s:
        after = {e.seq: e for e in audit_log.entries(s)}
        raw = s.execute(text("SELECT personal, personal_salt FROM audit_entry WHERE seq = 3")).one()
    assert raw.personal is None and raw.personal_salt is None
    assert after[3].personal is None and after[3].erased_at is not None
    assert after[3].personal_digest == before[3].personal_digest
    assert after[3].hash == before[3].hash
    assert after[6].data == {"erased_entries": [[3, 3]]}
    assert after[1].personal is not None  # others untouched
    # erasing by age takes the rest, once
    assert erase(db, NOW, before=NOW + timedelta(seconds=10)) == [1, 5]
    assert erase(db, NOW, before=NOW + timedelta(seconds=10)) == []
    assert verify(db).ok


def test_an_erasure_takes_entries_of_its_own_transaction_as_if_they_were_written(
    db: Database,
) -> None:
    """Entries appended in the erasing transaction are still buffered (written with the batch):
    they are erased exactly as the stored ones, and the chain verifies."""
    fill(db, 3)  # 1 and 3 hold personal parts
    at = NOW + timedelta(days=1)
    with db.session() as s:
        for i in (4, 5, 6):
            audit_log.append(
                s,
                at=NOW + timedelta(seconds=i),
                actor="kari",
                action="visitor_card_issue",
                subjects=[f"credential {5000000 + i % 2}"],
                data={"n": i},
                personal={"holder_name": f"Visitor {i}"} if i != 6 else None,
            )
        seqs = audit_log.erase_personal(s, at=at, subjects=["credential 5000001"])
        assert seqs == [1, 5]  # 5 is still buffered; 6 has no personal part
        assert audit_log.erase_personal(s, at=at, subjects=["credential 5000001"]) == []
        assert audit_log.erase_personal(s, at=at, before=NOW + timedelta(seconds=4)) == [3]
        # below_seq keeps the later ones, buffered or not
        assert (
            audit_log.erase_personal(s, at=at, subjects=["credential 5000000"], below_seq=4) == []
        )
        audit_log.append(
            s,
            at=at,
            actor="lockgate-retention",
            action="retention.run",
            data={audit_log.ERASED_ENTRIES: audit_log.seq_ranges([1, 3, 5])},
        )
    with db.session(readonly=True) as s:
        stored = {e.seq: e for e in audit_log.entries(s)}
    assert [q for q, e in stored.items() if e.erased_at is not None] == [1, 3, 5]
    assert all(stored[q].personal is None for q in (1, 3, 5))
    assert stored[4].personal == {"holder_name": "Visitor 4"}
    assert stored[5].erased_at == at and stored[5].personal_digest is not None
    assert verify(db).ok

    # rolled back: nothing erased, buffered or stored
    def erase_then_fail() -> None:
        with db.session() as s:
            audit_log.append(
                s,
                at=at,
                actor="kari",
                action="x",
                subjects=["credential 7"],
                personal={"holder_name": "Y"},
            )
            assert audit_log.erase_personal(s, at=at, subjects=["credential 7"]) == [8]
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        erase_then_fail()
    assert verify(db).ok


ERASED_AT = "'2026-11-24 10:00:00+00:00'"


@pytest.mark.parametrize(
    ("statement", "seq", "kind"),
    [
        # the personal part deleted as an erasure would, but no erasure marked
        (
            "UPDATE audit_entry SET personal = NULL, personal_salt = NULL WHERE seq = 3",
            3,
            audit_log.PERSONAL_REMOVED,
        ),
        ("UPDATE audit_entry SET personal = NULL WHERE seq = 3", 3, audit_log.PERSONAL_REMOVED),
        # marked erased, but no entry of the chain records that erasure
        (
            "UPDATE audit_entry SET personal = NULL, personal_salt = NULL, "
            f"erased_at = {ERASED_AT} WHERE seq = 3",
            3,
            audit_log.PERSONAL_REMOVED,
        ),
        # marked erased at the instant of the recorded erasure of entry 1, which is not 5
        (
            "UPDATE audit_entry SET personal = NULL, personal_salt = NULL, "
            "erased_at = (SELECT erased_at FROM audit_entry WHERE seq = 1) WHERE seq = 5",
            5,
            audit_log.PERSONAL_REMOVED,
        ),
        # the salt kept, so the part was not erased by the gateway
        (
            f"UPDATE audit_entry SET personal = NULL, erased_at = {ERASED_AT} WHERE seq = 5",
            5,
            audit_log.PERSONAL_ALTERED,
        ),
        # marked erased while it still holds its personal part
        (
            f"UPDATE audit_entry SET erased_at = {ERASED_AT} WHERE seq = 5",
            5,
            audit_log.PERSONAL_ALTERED,
        ),
        # marked erased though it never had a personal part
        (
            f"UPDATE audit_entry SET erased_at = {ERASED_AT} WHERE seq = 2",
            2,
            audit_log.PERSONAL_ALTERED,
        ),
    ],
)
def test_a_removed_personal_part_is_an_erasure_only_when_the_chain_records_one(
    db: Database, statement: str, seq: int, kind: str
) -> None:
    fill(db)
    erase(db, NOW + timedelta(days=1), subjects=["credential 5000001"])
    assert verify(db).ok
    if db.dialect == "sqlite":
        statement = statement.replace(ERASED_AT, "'2026-11-24 10:00:00.000000'")
    sql(db, statement)
    result = verify(db)
    assert result.problem is not None
    assert (result.problem.seq, result.problem.kind) == (seq, kind)
    assert f"entry {seq}" in result.problem.message


def test_the_digest_is_salted_per_entry(db: Database) -> None:
    with db.session() as s:
        a = audit_log.append(s, at=NOW, actor="a", action="x", personal={"name": "Same"})
        b = audit_log.append(s, at=NOW, actor="a", action="x", personal={"name": "Same"})
        salts = [r.personal_salt for r in s.execute(text("SELECT personal_salt FROM audit_entry"))]
    assert a.personal_digest != b.personal_digest
    assert len(set(salts)) == 2
    assert a.personal_digest == personal_digest(salts[0], canonical({"name": "Same"}))


def test_entries_filter_by_subject_time_actor_and_action(db: Database) -> None:
    fill(db)
    with db.session(readonly=True) as s:
        assert [e.seq for e in audit_log.entries(s, subject="credential 5000002")] == [2]
        assert [e.seq for e in audit_log.entries(s, subject="employment emp-anna")] == [
            1,
            2,
            3,
            4,
            5,
        ]
        assert [e.seq for e in audit_log.entries(s, since=NOW + timedelta(seconds=4))] == [4, 5]
        assert audit_log.entries(s, actor="nobody") == []
        assert [e.seq for e in audit_log.entries(s, limit=2, newest_first=True)] == [4, 5]


def test_append_refuses_bad_subjects_and_personal_data_in_odd_types(db: Database) -> None:
    with db.session() as s:
        with pytest.raises(ValueError, match="subject"):
            audit_log.append(s, at=NOW, actor="a", action="x", subjects=["a; b"])
        with pytest.raises(TypeError):
            audit_log.append(s, at=NOW, actor="a", action="x", data={"x": object()})
        with pytest.raises(ValueError, match="actor"):
            audit_log.append(s, at=NOW, actor="", action="x")


# ------------------------------------------------------------------ anchors


def test_an_anchor_catches_entries_cut_off_the_end(db: Database, tmp_path: Path) -> None:
    fill(db)
    anchors = tmp_path / "anchors.jsonl"
    with db.session(readonly=True) as s:
        top = audit_log.head(s)
    assert top is not None
    write_anchor(anchors, top, at=NOW)
    with db.session(readonly=True) as s:
        assert check_anchors(s, read_anchors(anchors)) is None
    sql(db, "DELETE FROM audit_entry WHERE seq = 5")
    assert verify(db).ok  # the chain alone cannot see a cut-off end ...
    with db.session(readonly=True) as s:
        problem = check_anchors(s, read_anchors(anchors))  # ... the anchor can
    assert problem is not None and (problem.seq, problem.kind) == (5, TRUNCATED)
    assert "ends at entry 4" in problem.message


def test_an_anchor_catches_a_rewritten_log(db: Database, tmp_path: Path) -> None:
    fill(db, 3)
    anchors = tmp_path / "anchors.jsonl"
    with db.session(readonly=True) as s:
        top = audit_log.head(s)
    assert top is not None
    write_anchor(anchors, top, at=NOW)
    sql(db, "DELETE FROM audit_entry")
    with db.session() as s:  # a consistent, forged history
        for i in range(3):
            audit_log.append(s, at=NOW, actor="forger", action="x", data={"i": i})
    assert verify(db).ok
    with db.session(readonly=True) as s:
        problem = check_anchors(s, read_anchors(anchors))
    assert problem is not None and problem.kind == ANCHOR_MISMATCH


def test_anchor_files_are_appended_and_bad_lines_named(tmp_path: Path) -> None:
    from gateway.audit.chain import Head

    path = tmp_path / "a" / "anchors.jsonl"
    write_anchor(path, Head(1, "a" * 64, NOW), at=NOW)
    write_anchor(path, Head(2, "b" * 64, NOW), at=NOW)
    assert [a.seq for a in read_anchors(path)] == [1, 2]
    assert json.loads(path.read_text().splitlines()[0])["hash"] == "a" * 64
    with path.open("a") as f:
        f.write('{"seq": 0, "hash": "x"}\n')
    with pytest.raises(AnchorFileError, match="line 3"):
        read_anchors(path)
    with pytest.raises(AnchorFileError, match="cannot be read"):
        read_anchors(tmp_path / "missing.jsonl")


# ------------------------------------------------------------------ property


values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.lists(st.dictionaries(st.text(max_size=8), values, max_size=4), min_size=1, max_size=6),
    personal=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=12), max_size=3),
    victim=st.integers(min_value=0),
    field=st.sampled_from(["actor", "action", "subject", "data", "prev_hash", "hash"]),
)
def test_any_change_to_any_hashed_field_is_caught_at_that_entry(
    sqlite_url: str,
    data: list[dict[str, object]],
    personal: dict[str, str],
    victim: int,
    field: str,
) -> None:
    with database(sqlite_url) as db:
        sql(db, "DELETE FROM audit_subject")
        sql(db, "DELETE FROM audit_entry")
        with db.session() as s:
            for i, d in enumerate(data):
                audit_log.append(
                    s,
                    at=NOW,
                    actor="op",
                    action="act",
                    subjects=[f"credential {i + 1}"],
                    data=d,
                    personal=personal,
                )
        assert verify(db).ok
        seq = victim % len(data) + 1
        value = {
            "actor": "op2",
            "action": "act2",
            "subject": "credential 999",
            "data": '{"forged":true}',
            "prev_hash": "f" * 64,
            "hash": "e" * 64,
        }[field]
        with db.session() as s:
            s.execute(
                text(f"UPDATE audit_entry SET {field} = :v WHERE seq = :s"), {"v": value, "s": seq}
            )
        problem = verify(db).problem
        assert problem is not None and problem.seq == seq


def test_the_remembered_head_does_not_outlive_a_rolled_back_savepoint(db: Database) -> None:
    def undone(s: Session) -> None:
        with s.begin_nested():
            audit_log.append(s, at=NOW, actor="a", action="undone")
            raise RuntimeError("roll the savepoint back")

    with db.session() as s:
        audit_log.append(s, at=NOW, actor="a", action="one")
        with pytest.raises(RuntimeError):
            undone(s)
        with s.begin_nested():  # a released savepoint keeps it
            audit_log.append(s, at=NOW, actor="a", action="two")
        three = audit_log.append(s, at=NOW, actor="a", action="three")
    with db.session() as s:  # a new transaction reads the head again
        four = audit_log.append(s, at=NOW, actor="a", action="four")
    assert (three.seq, four.seq) == (3, 4)
    result = verify(db)
    assert result.ok and result.entries == 4

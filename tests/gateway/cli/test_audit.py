"""``lockgate audit``: verify (and catch tampering), show (authenticated, logged), anchor."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.audit import log as audit_log
from gateway.audit.sink import AuditSink
from gateway.domain.timeutil import utcnow
from gateway.store.database import Database
from tests.gateway.cli.util import lockgate, site, token


def test_verify_passes_then_names_the_entry_someone_altered(db: Database) -> None:
    site(db)
    ok = lockgate(db, "audit", "verify", "--json")
    assert ok.exit_code == 0
    report = json.loads(ok.stdout)
    assert report["ok"] and report["entries"] > 50 and report["problem"] is None
    with db.session() as s:
        s.connection().exec_driver_sql("UPDATE audit_entry SET actor = 'nobody' WHERE seq = 17")
    bad = lockgate(db, "audit", "verify")
    assert bad.exit_code == 1
    assert "NOT valid at entry 17" in bad.stdout and "altered" in bad.stdout


def test_verify_catches_a_removed_entry(db: Database) -> None:
    site(db)
    with db.session() as s:
        s.connection().exec_driver_sql("DELETE FROM audit_entry WHERE seq = 30")
    bad = json.loads(lockgate(db, "audit", "verify", "--json").stdout)
    assert bad["problem"]["seq"] == 30 and bad["problem"]["kind"] == "missing"


def test_show_needs_an_operator_and_logs_the_reading(db: Database) -> None:
    site(db)
    assert (
        lockgate(db, "cards", "lost", "5000001", operator="desk", token=token("desk")).exit_code
        == 0
    )
    unnamed = lockgate(db, "audit", "show")
    assert unnamed.exit_code == 2
    out = lockgate(
        db,
        "audit",
        "show",
        "--credential",
        "5000001",
        "--json",
        "--personal",
        operator="audit",
        token=token("audit"),
    )
    assert out.exit_code == 0, out.stderr
    shown = json.loads(out.stdout)
    assert [e["action"] for e in shown] == ["visitor_card_issue", "visitor_card_return"]
    assert shown[0]["personal"] is None and shown[0]["erased_at"] is not None  # lost: erased
    assert shown[1]["actor"] == "desk"
    with db.session(readonly=True) as s:
        [read] = audit_log.entries(s, action="audit.read")
    assert read.actor == "audit"
    assert read.data["filter"]["subject"] == "credential 5000001"
    assert read.data["entries"] == 2 and read.data["personal"] is True
    table = lockgate(
        db,
        "audit",
        "show",
        "--since",
        "2000-01-01",
        "--limit",
        "5",
        operator="audit",
        token=token("audit"),
    )
    assert table.exit_code == 0 and "5 audit entries" in table.stdout


def test_show_finds_the_entries_about_a_lock_given_in_any_notation(db: Database) -> None:
    site(db)
    sink = AuditSink(utcnow)
    with db.session() as s:
        sink.event(
            s,
            "access_denied",
            {
                "key": "100000001",
                "cylinder": "200201",
                "via_station": "desk-1",
                "reason": "BLACKLISTED",
            },
        )
        sink.event(
            s, "access_granted", {"credential": "4000001", "device": "ctrl-office", "door": 2}
        )
    auth = {"operator": "audit", "token": token("audit")}
    for given, action in (
        ("200201", "device.access_denied"),
        ("cylinder:200201", "device.access_denied"),
        ("door:ctrl-office/2", "device.access_granted"),
        ("ctrl-office/2", "device.access_granted"),
        ("ctrl-office:2", "device.access_granted"),
    ):
        out = lockgate(db, "audit", "show", "--lock", given, "--json", **auth)
        assert out.exit_code == 0, out.stderr
        # (each reading is logged about the same subject: leave those out)
        found = [e["action"] for e in json.loads(out.stdout) if e["action"] != "audit.read"]
        assert found == [action], given
    nothing = json.loads(
        lockgate(db, "audit", "show", "--lock", "ctrl-office:1", "--json", **auth).stdout
    )
    assert [e for e in nothing if e["action"] != "audit.read"] == []
    bad = lockgate(db, "audit", "show", "--lock", "front door", **auth)
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --lock: ")


def test_show_reveals_personal_parts_only_when_asked(db: Database) -> None:
    site(db)
    plain = json.loads(
        lockgate(
            db,
            "audit",
            "show",
            "--action",
            "visitor_card_issue",
            "--json",
            operator="audit",
            token=token("audit"),
        ).stdout
    )
    assert "personal" not in plain[0] and "Helena" not in json.dumps(plain)
    full = json.loads(
        lockgate(
            db,
            "audit",
            "show",
            "--action",
            "visitor_card_issue",
            "--json",
            "--personal",
            operator="audit",
            token=token("audit"),
        ).stdout
    )
    assert full[0]["personal"]["holder_name"] == "Helena Berg"


def test_an_anchor_file_catches_the_end_cut_off(db: Database, tmp_path: Path) -> None:
    site(db)
    anchors = tmp_path / "anchors.jsonl"
    out = lockgate(db, "audit", "anchor", "--file", str(anchors))
    assert out.exit_code == 0 and "anchored entry" in out.stdout
    printed = json.loads(lockgate(db, "audit", "anchor").stdout)
    assert printed["seq"] == json.loads(anchors.read_text())["seq"]
    assert lockgate(db, "audit", "verify", "--anchor", str(anchors)).exit_code == 0
    with db.session() as s:
        s.connection().exec_driver_sql(
            "DELETE FROM audit_entry WHERE seq = (SELECT max(seq) FROM audit_entry)"
        )
    assert lockgate(db, "audit", "verify").exit_code == 0
    cut = lockgate(db, "audit", "verify", "--anchor", str(anchors))
    assert cut.exit_code == 1 and "cut off its end" in cut.stdout
    broken = tmp_path / "broken.jsonl"
    broken.write_text("not json\n")
    bad = lockgate(db, "audit", "verify", "--anchor", str(broken))
    assert bad.exit_code == 2 and "line 1" in bad.stderr

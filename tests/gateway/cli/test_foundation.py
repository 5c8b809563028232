"""The foundation's command line: explain, keys, reports, the key order, manifest imports and
receipts — each change made by a named, authenticated operator."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from openpyxl import Workbook
from pypdf import PdfReader

from gateway.commands import model as m
from gateway.domain import Employment, Id06Card, Person
from gateway.domain.facts import Credential
from gateway.store import fact_repository as fact_store
from gateway.store.database import Database
from tests import sample
from tests.gateway.cli.util import lockgate, site, token


def admin(db: Database, *args: str) -> object:
    return lockgate(db, *args, operator="admin", token=token("admin"))


def test_explain_answers_why_and_what_in_text_and_json(db: Database) -> None:
    site(db)
    text = lockgate(db, "explain", sample.KEY_CECILIA, f"cylinder:{sample.CYL_TECH[0]}")
    assert text.exit_code == 0, text.stderr
    assert "CANNOT OPEN" in text.stdout
    assert "COMPETENCE_MISSING" in text.stdout
    data = json.loads(
        lockgate(db, "explain", sample.KEY_ANNA, sample.CYL_SIGNAL[0], "--json").stdout
    )
    assert data["can_open"] is True
    assert {o["lock"] for o in data["opens"]} >= {f"cylinder:{c}" for c in sample.CYL_SIGNAL}
    assert all(c["held"] for c in data["lock_checks"])
    blocked = json.loads(lockgate(db, "explain", sample.KEY_DAVID, "--json").stdout)
    assert [r["code"] for r in blocked["reasons"]] == ["ID06_BLOCKED"]


def test_explain_takes_a_lock_in_every_published_notation_and_answers_in_one(
    db: Database,
) -> None:
    site(db)
    for given in ("200201", "cylinder:200201", " cylinder:200201 "):
        data = json.loads(lockgate(db, "explain", sample.KEY_ANNA, given, "--json").stdout)
        assert (data["lock"], data["can_open"]) == ("cylinder:200201", True)
    for given in ("door:ctrl-office/1", "ctrl-office/1", "ctrl-office:1"):
        data = json.loads(lockgate(db, "explain", sample.TAG_ANNA, given, "--json").stdout)
        assert (data["lock"], data["can_open"]) == ("door:ctrl-office/1", True)
        assert {o["lock"] for o in data["opens"]} == {"door:ctrl-office/1", "door:ctrl-office/2"}
        assert data["lock_checks"][0]["source"] == "door:ctrl-office/1"


def test_explain_text_shows_windows_codes_and_zones_as_a_person_reads_them(db: Database) -> None:
    site(db)
    text = lockgate(db, "explain", sample.VISITOR_CARD, "ctrl-office:1").stdout
    assert "{" not in text and "'from'" not in text
    assert re.search(r"sp-office \d{4}-\d\d-\d\d \d\d:\d\d CES?T – \d{4}", text)
    assert re.search(r"at \d{4}-\d\d-\d\d \d\d:\d\d CES?T", text)
    unsigned = lockgate(db, "explain", sample.KEY_FATIMA, "cylinder:200201").stdout
    assert "RECEIPT_UNSIGNED RECEIPT_UNSIGNED" not in unsigned
    line = next(x for x in unsigned.splitlines() if "credential active" in x)
    assert line.count("RECEIPT_UNSIGNED") == 1
    shown = lockgate(db, "keys", "show", sample.KEY_ANNA).stdout
    assert re.search(r"valid \d{4}-\d\d-\d\d \d\d:\d\d CES?T – ", shown)


def test_explain_refuses_bad_input_clearly(db: Database) -> None:
    site(db)
    unknown = lockgate(db, "explain", "999999999")
    assert unknown.exit_code == 1
    bad_lock = lockgate(db, "explain", sample.KEY_ANNA, "the-front-door")
    assert bad_lock.exit_code == 2
    assert "LOCK: " in bad_lock.stderr and "expected cylinder:NUMBER" in bad_lock.stderr
    bad_time = lockgate(db, "explain", sample.KEY_ANNA, "--at", "tomorrow")
    assert bad_time.exit_code == 2
    assert "--at" in bad_time.stderr


def test_keys_list_and_show(db: Database) -> None:
    site(db)
    listed = json.loads(lockgate(db, "keys", "list", "--json").stdout)
    assert {c["number"] for c in listed} >= {sample.KEY_ANNA, sample.TAG_ANNA}
    inactive = json.loads(lockgate(db, "keys", "list", "--inactive", "--json").stdout)
    assert sample.KEY_DAVID in {c["number"] for c in inactive}
    assert sample.KEY_ANNA not in {c["number"] for c in inactive}
    shown = lockgate(db, "keys", "show", sample.KEY_BJORN_SUB)
    assert shown.exit_code == 0
    assert "Karlsson" in shown.stdout and "cylinder:200201" in shown.stdout


def test_reports(db: Database) -> None:
    site(db)
    apps = json.loads(lockgate(db, "report", "applications", "--json").stdout)
    assert [(a["assignment_id"], a["revision"], a["expedited"]) for a in apps] == [
        ("asg-hallsberg", 3, True)
    ]
    expiring = json.loads(lockgate(db, "report", "expiring", "--days", "7", "--json").stdout)
    assert {i["subject"] for i in expiring} >= {sample.VISITOR_CARD}
    assert json.loads(lockgate(db, "report", "exposure", "--json").stdout) == []


def test_a_key_order_its_manifest_the_returned_list_and_the_receipts(
    db: Database, tmp_path: Path
) -> None:
    core = site(db)
    core.execute(
        m.PutPerson(person=Person(id="p-nils", first_name="Nils", last_name="Öberg")),
        operator="loader",
    )
    core.execute(
        m.PutEmployment(
            employment=Employment(
                id="emp-nils",
                person_id="p-nils",
                org_number=sample.MAIN,
                id06=Id06Card(
                    card_number="ID06NO0001",
                    valid_until=core.clock().date().replace(year=core.clock().year + 1),
                ),
            )
        ),
        operator="loader",
    )

    refused = lockgate(
        db, "order", sample.MAIN, "--quantity", "1", "--address", "X", "--id", "order-x"
    )
    assert refused.exit_code == 2  # no operator named
    ordered = admin(
        db, "order", sample.MAIN, "--quantity", "2", "--address", "Depå 1", "--id", "order-cli"
    )
    assert ordered.exit_code == 0, ordered.stderr

    bad = tmp_path / "bad.csv"
    bad.write_text("Nyckelnummer\n100000099\n12345\n", encoding="utf-8")
    rejected = admin(db, "import", "manifest", str(bad), "--order", "order-cli")
    assert rejected.exit_code == 1
    assert "row 3, column key_number" in rejected.stderr
    with db.session(readonly=True) as s:
        assert fact_store.get(s, Credential, "100000099") is None

    good = tmp_path / "delivery.csv"
    with good.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter=";").writerows([["Nyckelnummer"], ["100000098"], ["100000099"]])
    delivered = admin(db, "import", "manifest", str(good), "--order", "order-cli")
    assert delivered.exit_code == 0, delivered.stderr
    assert "2 inactive keys" in delivered.stdout

    returned = tmp_path / "returned.xlsx"
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Nyckelnummer", "Förnamn", "Efternamn", "ID06"])
    ws.append(["100000098", "Nils", "Öberg", "ID06NO0001"])
    wb.save(returned)
    receipts = tmp_path / "receipts"
    linked = admin(db, "import", "returned", str(returned), "--receipts", str(receipts))
    assert linked.exit_code == 0, linked.stderr
    text = "".join(p.extract_text() for p in PdfReader(receipts / "receipt-100000098.pdf").pages)
    assert "100000098" in text and "Öberg" in text

    pdf = tmp_path / "again.pdf"
    assert admin(db, "receipt", "100000098", "--out", str(pdf)).exit_code == 0
    assert pdf.read_bytes()[:4] == b"%PDF"
    signed = admin(db, "receipt", "sign", "100000098")
    assert signed.exit_code == 0, signed.stderr
    assert "in service" in signed.stdout
    state = json.loads(lockgate(db, "explain", "100000098", "--json").stdout)["state"]
    assert state["reasons"] == ["NO_APPROVED_APPLICATION"]

    twice = admin(db, "import", "returned", str(returned))
    assert twice.exit_code == 1
    assert "row 2" in twice.stderr


def test_db_upgrade_is_idempotent_and_hides_passwords(db: Database) -> None:
    out = lockgate(db, "db", "upgrade")
    assert out.exit_code == 0
    assert "nothing to do" in out.stdout

"""``lockgate report access-review`` and ``lockgate review``: the quarterly access review."""

from __future__ import annotations

import json

from gateway.store.database import Database
from tests import sample
from tests.gateway.cli.util import lockgate, site, token


def test_the_report_lists_every_live_credential_and_warns_without_a_review(
    db: Database,
) -> None:
    site(db)
    out = lockgate(db, "report", "access-review", "--json")
    assert out.exit_code == 0
    review = json.loads(out.stdout)
    numbers = {c["number"] for g in review["groups"] for c in g["credentials"]}
    assert sample.KEY_ANNA in numbers and sample.VISITOR_CARD in numbers
    assert review["credentials"] == len(numbers) == 11
    assert "no access review has been recorded" in out.stderr
    text = lockgate(db, "report", "access-review")
    assert "Banbyggarna i Mälardalen AB" in text.stdout and "Helena Berg" in text.stdout


def test_the_operations_manager_records_a_review_that_revokes_what_it_removes(
    db: Database,
) -> None:
    site(db)
    desk = lockgate(
        db,
        "review",
        "record",
        "--remove",
        sample.KEY_ERIK,
        "--yes",
        operator="desk",
        token=token("desk"),
    )
    assert desk.exit_code == 1 and "may not record_access_review" in desk.stderr
    unknown = lockgate(
        db,
        "review",
        "record",
        "--remove",
        "999999999",
        "--yes",
        operator="boss",
        token=token("boss"),
    )
    assert unknown.exit_code == 2 and "999999999 is not registered" in unknown.stderr
    done = lockgate(
        db,
        "review",
        "record",
        "--remove",
        sample.KEY_ERIK,
        "--remove",
        sample.VISITOR_CARD,
        "--note",
        "Erik left the project",
        "--yes",
        operator="boss",
        token=token("boss"),
    )
    assert done.exit_code == 0, done.stderr
    assert "11 credentials reviewed, 2 revoked" in done.stdout
    erik = json.loads(lockgate(db, "keys", "show", sample.KEY_ERIK, "--json").stdout)
    assert erik["state"]["reasons"] == ["CREDENTIAL_REVOKED"]
    card = json.loads(lockgate(db, "keys", "show", sample.VISITOR_CARD, "--json").stdout)
    assert card["holder"] == "Helena Berg (Hissservice AB)"  # kept until the card is handed in
    after = lockgate(db, "report", "access-review", "--json")
    assert after.stderr == ""
    review = json.loads(after.stdout)
    assert review["last_review"]["reviewer"] == "boss"
    assert review["last_review"]["removed"] == [sample.KEY_ERIK, sample.VISITOR_CARD]
    lines = {c["number"]: c for g in review["groups"] for c in g["credentials"]}
    assert sample.KEY_ERIK not in lines
    assert lines[sample.VISITOR_CARD]["flags"] == ["expired, not handed back"]
    listed = json.loads(lockgate(db, "review", "list", "--json").stdout)
    assert [(r["reviewer"], r["credentials"]) for r in listed] == [("boss", 11)]


def test_recording_asks_before_revoking(db: Database) -> None:
    site(db)
    declined = lockgate(
        db,
        "review",
        "record",
        "--remove",
        sample.KEY_ERIK,
        operator="admin",
        token=token("admin"),
        input="n\n",
    )
    assert declined.exit_code == 1 and "nothing recorded" in declined.stderr
    assert json.loads(lockgate(db, "review", "list", "--json").stdout) == []

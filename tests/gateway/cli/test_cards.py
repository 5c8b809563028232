"""``lockgate cards``: the visitor-card routine at the reception desk, and the charges report."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from gateway.commands.handlers import end_of_working_day
from gateway.domain.timeutil import utcnow
from gateway.rules import RulesConfig
from gateway.store.database import Database
from tests import sample
from tests.gateway.cli.util import lockgate, site, token

ISSUE = (
    "cards", "issue", "5000050",
    "--holder", "Helga Nordmann",
    "--company", "Heis og Løft AS",
    "--mobile", "+47 912 34 567",
    "--sponsor", "emp-anna",
    "--space", "sp-office",
)  # fmt: skip


def until(days: int = 2) -> str:
    return (utcnow() + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def test_issue_asks_for_every_field_of_the_routine(db: Database) -> None:
    site(db)
    auth = {"operator": "front", "token": token("front")}
    no_until = lockgate(db, *ISSUE, "--reason", "supplier", "--in-person", "--return-duty", **auth)
    assert no_until.exit_code == 2 and "--until" in no_until.stderr
    absent = lockgate(
        db, *ISSUE, "--reason", "supplier", "--until", until(), "--return-duty", **auth
    )
    assert absent.exit_code == 2 and "--in-person" in absent.stderr
    untold = lockgate(db, *ISSUE, "--reason", "supplier", "--until", until(), "--in-person", **auth)
    assert untold.exit_code == 2 and "--return-duty" in untold.stderr
    no_sponsor = lockgate(
        db,
        *[a if a != "emp-anna" else "emp-nobody" for a in ISSUE],
        "--reason",
        "supplier",
        "--until",
        until(),
        "--in-person",
        "--return-duty",
        **auth,
    )
    assert no_sponsor.exit_code == 1 and "no card without a contact person" in no_sponsor.stderr
    bad_mobile = lockgate(
        db,
        *[a if a != "+47 912 34 567" else "call me" for a in ISSUE],
        "--reason",
        "supplier",
        "--until",
        until(),
        "--in-person",
        "--return-duty",
        **auth,
    )
    assert bad_mobile.exit_code == 2 and "--mobile" in bad_mobile.stderr
    ok = lockgate(
        db,
        *ISSUE,
        "--reason",
        "supplier",
        "--until",
        until(),
        "--in-person",
        "--return-duty",
        **auth,
    )
    assert ok.exit_code == 0, ok.stderr
    assert "visitor card 5000050 issued" in ok.stdout
    shown = json.loads(lockgate(db, "keys", "show", "5000050", "--json").stdout)
    assert shown["holder"] == "Helga Nordmann (Heis og Løft AS)"


def test_a_forgotten_card_lasts_to_the_end_of_the_working_day(db: Database) -> None:
    site(db)
    start = utcnow() + timedelta(minutes=5)
    out = lockgate(
        db,
        *ISSUE,
        "--reason",
        "forgot_card",
        "--in-person",
        "--return-duty",
        "--from",
        start.isoformat(),
        operator="front",
        token=token("front"),
    )
    assert out.exit_code == 0, out.stderr
    [card] = [
        c
        for c in json.loads(lockgate(db, "cards", "list", "--json").stdout)
        if c["number"] == "5000050"
    ]
    expected = end_of_working_day(
        start.replace(microsecond=0) + timedelta(seconds=1), RulesConfig()
    )
    assert datetime.fromisoformat(card["valid_until"]) == expected.replace(microsecond=0)


def test_reception_changes_cards_but_does_not_issue_them(db: Database) -> None:
    site(db)
    issued = lockgate(
        db,
        *ISSUE,
        "--reason",
        "supplier",
        "--until",
        until(),
        "--in-person",
        "--return-duty",
        operator="desk",
        token=token("desk"),
    )
    assert issued.exit_code == 1
    assert "FORBIDDEN" in issued.stderr and "may not issue_credentials" in issued.stderr
    changed = lockgate(
        db,
        "cards",
        "change",
        sample.VISITOR_CARD,
        "--until",
        until(5),
        operator="desk",
        token=token("desk"),
    )
    assert changed.exit_code == 0, changed.stderr


def test_return_erases_the_holder_and_a_lost_tag_is_charged(db: Database) -> None:
    site(db)
    returned = lockgate(
        db, "cards", "return", sample.VISITOR_CARD, operator="desk", token=token("desk")
    )
    assert returned.exit_code == 0 and "holder's data erased" in returned.stdout
    shown = json.loads(lockgate(db, "keys", "show", sample.VISITOR_CARD, "--json").stdout)
    assert shown["holder"] == "[erased] ([erased])"
    listed = lockgate(db, "cards", "list", "--all")
    assert "[erased]" in listed.stdout  # shown literally, not taken for markup
    lost = lockgate(db, "cards", "lost", sample.TAG_ANNA, operator="desk", token=token("desk"))
    assert lost.exit_code == 0
    assert "NOK 400 charged to employment emp-anna" in lost.stdout
    report = json.loads(lockgate(db, "report", "charges", "--json").stdout)
    assert [(c["credential"], c["amount_nok"], c["billed"]) for c in report] == [
        (sample.TAG_ANNA, 400, "Anna Lindqvist")
    ]
    twice = lockgate(db, "cards", "lost", sample.TAG_ANNA, operator="desk", token=token("desk"))
    assert twice.exit_code == 1 and "ILLEGAL_TRANSITION" in twice.stderr
    assert len(json.loads(lockgate(db, "report", "charges", "--json").stdout)) == 1

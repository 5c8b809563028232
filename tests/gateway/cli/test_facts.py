"""``lockgate orgs|persons|employments|agreements|spaces|applications``: the master data as
stored, with what depends on it."""

from __future__ import annotations

import json
import re

from gateway.store.database import Database
from tests import sample
from tests.gateway.cli.util import lockgate, site


def data(db: Database, *args: str) -> object:
    out = lockgate(db, *args, "--json")
    assert out.exit_code == 0, out.stderr
    return json.loads(out.stdout)


def test_organisations_with_their_agreements_and_employments(db: Database) -> None:
    site(db)
    orgs = {o["org_number"]: o for o in data(db, "orgs", "list")}  # type: ignore[union-attr]
    main = orgs[sample.MAIN]
    assert main["agreement_in_force"] is True
    assert "emp-anna" in main["employments"] and sample.KEY_ANNA in main["credentials"]
    shown = data(db, "orgs", "show", sample.MAIN.replace("-", ""))
    assert isinstance(shown, dict)
    assert {e["id"] for e in shown["employments"]} == set(main["employments"])
    text = lockgate(db, "orgs", "list").stdout
    assert "Banbyggarna" in text
    unknown = lockgate(db, "orgs", "show", "556036-0793")
    assert unknown.exit_code == 1 and "ORG_NUMBER" in unknown.stderr


def test_persons_and_employments(db: Database) -> None:
    site(db)
    persons = data(db, "persons", "list", "--org", sample.MAIN)
    assert isinstance(persons, list)
    anna = next(p for p in persons if p["id"] == "p-anna")
    assert (anna["first_name"], anna["last_name"]) == ("Anna", "Lindqvist")
    assert "mobile" not in anna  # listed without mobile numbers
    assert [c["code"] for c in anna["competences"]] == ["ELSAK"]
    shown = data(db, "persons", "show", "p-anna")
    assert isinstance(shown, dict) and shown["mobile"]
    employments = data(db, "employments", "list", "--person", "p-bjorn")
    assert isinstance(employments, list)
    assert {e["id"] for e in employments} == {"emp-bjorn-main", "emp-bjorn-sub"}
    emp = data(db, "employments", "show", "emp-david")
    assert isinstance(emp, dict)
    assert emp["id06"]["status"] == "blocked" and emp["credentials"] == [sample.KEY_DAVID]


def test_agreements_say_whether_they_are_in_force(db: Database) -> None:
    site(db)
    rows = {a["id"]: a for a in data(db, "agreements", "list")}  # type: ignore[union-attr]
    assert rows["agr-main"]["in_force"] is True
    assert rows["agr-ended"]["in_force"] is False
    assert rows["agr-ended"]["terminated_at"].endswith(("Z", "+00:00"))
    text = lockgate(db, "agreements", "list").stdout
    assert "not in force" in text
    assert re.search(r"\d\d:\d\d CES?T", text)


def test_spaces_name_their_locks_in_the_one_notation_and_who_may_open_them(db: Database) -> None:
    site(db)
    office = data(db, "spaces", "show", "sp-office")
    assert isinstance(office, dict)
    assert office["locks"] == ["door:ctrl-office/1", "door:ctrl-office/2"]
    assert sample.TAG_ANNA in office["granted_to"]
    depot = next(s for s in data(db, "spaces", "list") if s["id"] == "sp-depot")  # type: ignore[union-attr]
    assert depot["locks"] == ["cylinder:200301", "door:ctrl-office/3"]


def test_an_application_revision_as_stored(db: Database) -> None:
    site(db)
    listed = {a["assignment_id"]: a for a in data(db, "applications", "list")}  # type: ignore[union-attr]
    hallsberg = listed["asg-hallsberg"]
    assert (hallsberg["latest_revision"], hallsberg["latest_status"]) == (3, "submitted")
    assert hallsberg["in_effect_revision"] == 2
    latest = data(db, "applications", "show", "asg-hallsberg")
    assert isinstance(latest, dict)
    assert (latest["revision"], latest["in_effect"], latest["expedited"]) == (3, False, True)
    second = data(db, "applications", "show", "asg-hallsberg", "--revision", "2")
    assert isinstance(second, dict)
    assert (second["revision"], second["in_effect"]) == (2, True)
    assert {e["employment_id"] for e in second["entries"]} >= {"emp-anna"}
    text = lockgate(db, "applications", "show", "asg-hallsberg", "--revision", "2").stdout
    assert "in effect" in text and "Anna Lindqvist" in text
    # Revision 1 no longer matters to the engine (2 is approved after it); the store has it.
    assert hallsberg["revisions"] == [1, 2, 3]
    first = data(db, "applications", "show", "asg-hallsberg", "--revision", "1")
    assert isinstance(first, dict)
    assert (first["revision"], first["status"], first["in_effect"]) == (1, "approved", False)
    assert first["latest_revision"] == 3
    missing = lockgate(db, "applications", "show", "asg-hallsberg", "--revision", "9")
    assert missing.exit_code == 2 and "--revision" in missing.stderr

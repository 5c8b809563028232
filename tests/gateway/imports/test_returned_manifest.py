from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from gateway.domain import (
    Credential,
    CredentialKind,
    CredentialState,
    Employment,
    Id06Card,
    Id06Status,
    Person,
)
from gateway.imports import (
    HandoutLink,
    ImportRejected,
    ReturnedRow,
    parse_returned_manifest,
    resolve_returned,
)

ORG = "556036-0793"
OTHER_ORG = "556677-8899"


def csv_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "returned.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------- parsing


def test_parse_swedish_headers_and_skip_keys_in_stock(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "Nyckelnummer;Förnamn;Efternamn;ID06-kort;Kommentar",
        "123456789;Anna;Berg;ab 123456;",
        "223456789;;;;kept in stock",
        "323456789;Örjan;Ek;CD654321;",
    )
    assert parse_returned_manifest(path) == [
        ReturnedRow(2, "123456789", "Anna", "Berg", "AB123456"),
        ReturnedRow(4, "323456789", "Örjan", "Ek", "CD654321"),
    ]


@pytest.mark.parametrize(
    "header",
    [
        "key_number,first_name,last_name,id06",
        "Key,First Name,Last Name,ID06 card",
        "nyckelnr,fornamn,EFTERNAMN,id06kort",
        "KEY-NUMBER,FIRST-NAME,LAST-NAME,ID06_CARD",
    ],
)
def test_parse_accepted_headers(tmp_path: Path, header: str) -> None:
    rows = parse_returned_manifest(csv_file(tmp_path, header, "123456789,Anna,Berg,AB123456"))
    assert rows == [ReturnedRow(2, "123456789", "Anna", "Berg", "AB123456")]


def test_parse_xlsx(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Nyckelnummer", "Förnamn", "Efternamn", "ID06"])
    ws.append(["012345678", "Anna", "Berg", 12345678])
    path = tmp_path / "returned.xlsx"
    wb.save(path)
    assert parse_returned_manifest(path) == [
        ReturnedRow(2, "012345678", "Anna", "Berg", "12345678")
    ]


def test_parse_reports_every_missing_column(tmp_path: Path) -> None:
    with pytest.raises(ImportRejected) as info:
        parse_returned_manifest(csv_file(tmp_path, "key;name", "123456789;Anna Berg"))
    assert [(e.row, e.column) for e in info.value.errors] == [
        (1, "first_name"),
        (1, "last_name"),
        (1, "id06"),
    ]


def test_parse_reports_every_bad_value(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "key;first_name;last_name;id06",
        "123456789;Anna;Berg;AB123456",  # 2: fine
        ";Bo;Ek;CD123456",  # 3: no key
        "123;;Ek;CD123456",  # 4: short key, no first name
        "323456789;Cia;;AB!",  # 5: no last name, bad ID06
        f"423456789;{'x' * 101};Ek;",  # 6: first name too long, no ID06
    )
    with pytest.raises(ImportRejected) as info:
        parse_returned_manifest(path)
    assert [(e.row, e.column) for e in info.value.errors] == [
        (3, "key_number"),
        (4, "key_number"),
        (4, "first_name"),
        (5, "last_name"),
        (5, "id06"),
        (6, "first_name"),
        (6, "id06"),
    ]
    messages = {(e.row, e.column): e.message for e in info.value.errors}
    assert messages[(5, "id06")] == (
        "'AB!' is not an ID06 card number: an ID06 card number is 6 to 20 letters or digits"
    )
    assert messages[(4, "first_name")] == "the first name is empty"
    assert "100 characters" in messages[(6, "first_name")]


def test_parse_file_without_any_holder(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "key;first_name;last_name;id06", "123456789;;;")
    with pytest.raises(ImportRejected, match="no row names a key holder"):
        parse_returned_manifest(path)


# --------------------------------------------------------------------------------- resolving


@dataclass
class Facts:
    """The stored facts the importer looks up, kept in dictionaries."""

    credentials: dict[str, Credential] = field(default_factory=dict)
    employments: dict[str, Employment] = field(default_factory=dict)
    persons: dict[str, Person] = field(default_factory=dict)

    def add_key(
        self,
        number: str,
        state: CredentialState = CredentialState.DELIVERED,
        employment_id: str | None = None,
        kind: CredentialKind = CredentialKind.KEY,
    ) -> None:
        self.credentials[number] = Credential(
            number=number, kind=kind, state=state, employment_id=employment_id
        )

    def add_employment(
        self,
        emp_id: str,
        first: str,
        last: str,
        card: str,
        org: str = ORG,
        status: Id06Status = Id06Status.ACTIVE,
    ) -> None:
        person_id = f"p-{emp_id}"
        self.persons[person_id] = Person(id=person_id, first_name=first, last_name=last)
        self.employments[emp_id] = Employment(
            id=emp_id,
            person_id=person_id,
            org_number=org,
            id06=Id06Card(card_number=card, valid_until=date(2030, 1, 1), status=status),
        )

    def by_id06(self, card: str) -> Employment | None:
        return next((e for e in self.employments.values() if e.id06.card_number == card), None)

    def keys_of(self, employment_id: str) -> list[Credential]:
        return [c for c in self.credentials.values() if c.employment_id == employment_id]

    def resolve(self, rows: list[ReturnedRow]) -> list[HandoutLink]:
        return resolve_returned(
            rows,
            credential=self.credentials.get,
            employment_by_id06=self.by_id06,
            person=self.persons.get,
            keys_of_employment=self.keys_of,
        )


@pytest.fixture
def facts() -> Facts:
    f = Facts()
    f.add_employment("e-anna", "Anna", "Berg", "AB123456")
    f.add_employment("e-bo", "Bo Erik", "Ek", "CD123456")
    f.add_employment("e-cia", "Cia", "Åberg", "EF123456", org=OTHER_ORG)
    for n in ("100000001", "100000002", "100000003", "100000004"):
        f.add_key(n)
    return f


def test_resolve_links_every_row(facts: Facts) -> None:
    rows = [
        ReturnedRow(2, "100000001", "anna", "BERG", "AB123456"),
        ReturnedRow(3, "100000002", " bo   erik ", "ek", "CD123456"),
        ReturnedRow(5, "100000003", "CIA", "åberg", "EF123456"),
    ]
    assert facts.resolve(rows) == [
        HandoutLink(2, "100000001", "e-anna"),
        HandoutLink(3, "100000002", "e-bo"),
        HandoutLink(5, "100000003", "e-cia"),
    ]


def test_resolve_allows_a_new_key_after_the_old_one_ended(facts: Facts) -> None:
    facts.add_key("200000001", CredentialState.LOST, employment_id="e-anna")
    facts.add_key("200000002", CredentialState.RETURNED, employment_id="e-anna")
    rows = [ReturnedRow(2, "100000001", "Anna", "Berg", "AB123456")]
    assert facts.resolve(rows) == [HandoutLink(2, "100000001", "e-anna")]


def test_resolve_reports_every_problem_at_once(facts: Facts) -> None:
    facts.add_employment("e-fia", "Fia", "Holm", "LM123456")
    facts.add_key("300000001", CredentialState.HANDED_OUT, employment_id="e-fia")
    facts.add_key("300000002", kind=CredentialKind.TAG)  # a tag number of 9 digits
    facts.add_employment("e-dan", "Dan", "Ny", "GH123456", status=Id06Status.TERMINATED)
    facts.add_employment("e-eva", "Eva", "Lund", "JK123456")
    facts.add_key("300000003", CredentialState.IN_SERVICE, employment_id="e-eva")
    rows = [
        ReturnedRow(2, "999999999", "Anna", "Berg", "AB123456"),  # unknown key
        ReturnedRow(3, "300000001", "Anna", "Berg", "AB123456"),  # handed out, anna twice
        ReturnedRow(4, "300000002", "Cia", "Åberg", "EF123456"),  # a tag
        ReturnedRow(5, "100000001", "Bo", "Ek", "XX999999"),  # card unknown
        ReturnedRow(6, "100000002", "Cia", "Berg", "EF123456"),  # last name, cia twice
        ReturnedRow(7, "100000002", "Dan", "Ny", "GH123456"),  # key twice, card terminated
        ReturnedRow(8, "100000003", "Eva", "Lund", "JK123456"),  # already holds a key
        ReturnedRow(9, "100000004", "Bo Erik", "Ek", "CD123456"),  # fine
    ]
    with pytest.raises(ImportRejected) as info:
        facts.resolve(rows)
    found = {(e.row, e.column): e.message for e in info.value.errors}
    assert set(found) == {
        (2, "key_number"),
        (3, "key_number"),
        (3, "id06"),
        (4, "key_number"),
        (5, "id06"),
        (6, "last_name"),
        (6, "id06"),
        (7, "key_number"),
        (7, "id06"),
        (8, "id06"),
    }
    assert len(info.value.errors) == len(found)
    assert found[(2, "key_number")] == (
        "key 999999999 is not known; import its delivery manifest first"
    )
    assert found[(3, "key_number")] == (
        "key 300000001 is handed_out to employment e-fia; only a delivered key in stock can "
        "be handed out"
    )
    assert "gets two keys (also on row 2)" in found[(3, "id06")]
    assert found[(4, "key_number")] == "300000002 is a tag, not a key"
    assert "XX999999 is not registered to any employment" in found[(5, "id06")]
    assert found[(6, "last_name")] == (
        "'Berg' does not match the name registered for ID06 card EF123456 ('Åberg')"
    )
    assert "also on row 4" in found[(6, "id06")]
    assert found[(7, "key_number")] == "key 100000002 is listed twice (also on row 6)"
    assert found[(7, "id06")] == "ID06 card GH123456 is terminated"
    assert "already holds key 300000003" in found[(8, "id06")]
    assert "one physical key per employment" in found[(8, "id06")]
    assert [e.row for e in info.value.errors] == sorted(e.row for e in info.value.errors)


def test_resolve_first_name_mismatch(facts: Facts) -> None:
    with pytest.raises(ImportRejected) as info:
        facts.resolve([ReturnedRow(2, "100000001", "Ana", "Berg", "AB123456")])
    assert [(e.row, e.column) for e in info.value.errors] == [(2, "first_name")]


def test_resolve_unknown_person(facts: Facts) -> None:
    del facts.persons["p-e-anna"]
    with pytest.raises(ImportRejected, match="person p-e-anna is not known"):
        facts.resolve([ReturnedRow(2, "100000001", "Anna", "Berg", "AB123456")])


def test_file_to_links_end_to_end(tmp_path: Path, facts: Facts) -> None:
    path = csv_file(
        tmp_path,
        "Nyckelnummer;Förnamn;Efternamn;ID06",
        "100000001;Anna;Berg;AB 123456",
        "100000002;;;",
        "100000003;Bo Erik;Ek;cd123456",
    )
    links = facts.resolve(parse_returned_manifest(path))
    assert links == [HandoutLink(2, "100000001", "e-anna"), HandoutLink(4, "100000003", "e-bo")]

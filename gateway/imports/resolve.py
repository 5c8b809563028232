"""Step 3 of a manifest import, *resolve*: check a returned manifest's rows against the
stored facts and say which key goes to whom (nothing is linked unless the whole file is
right)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.domain import (
    Credential,
    CredentialKind,
    CredentialState,
    Employment,
    Id06Status,
    Person,
)
from gateway.imports.check import FIRST_NAME, ID06, KEY_NUMBER, LAST_NAME, ReturnedRow
from gateway.imports.errors import ImportRejected, RowError


@dataclass(frozen=True)
class HandoutLink:
    """A key to hand out: link ``credential_number`` to ``employment_id`` (from file row
    ``row``). Linking produces the key handout receipt."""

    row: int
    credential_number: str
    employment_id: str


def _same_name(a: str, b: str) -> bool:
    def norm(s: str) -> str:
        return " ".join(unicodedata.normalize("NFC", s).casefold().split())

    return norm(a) == norm(b)


def resolve_returned(
    rows: Sequence[ReturnedRow],
    *,
    credential: Callable[[str], Credential | None],
    employment_by_id06: Callable[[str], Employment | None],
    person: Callable[[str], Person | None],
    keys_of_employment: Callable[[str], list[Credential]],
) -> list[HandoutLink]:
    """Check a returned manifest against the stored facts and say which key goes to whom.

    The look-ups are: ``credential`` by number, ``employment_by_id06`` by ID06 card number,
    ``person`` by id and ``keys_of_employment`` (every credential linked to an employment).
    For every row: the key exists, is a key, and is ``delivered`` (in stock); the ID06 card is
    registered to an employment and not terminated; first and last name match that
    employment's person (case-insensitive, whitespace-normalised); the employment holds no
    other key that is not terminal (one physical key per employment); no key and no employment
    appears twice in the file. Raises :class:`ImportRejected` with every problem at once;
    nothing is linked unless the whole file is right.
    """
    errors: list[RowError] = []
    links: list[HandoutLink] = []
    key_rows: dict[str, int] = {}
    employment_rows: dict[str, int] = {}
    for r in rows:
        _check_key_in_stock(r, credential(r.key_serial), errors)
        _check_key_once(r, key_rows, errors)
        employment = employment_by_id06(r.id06_card)
        if employment is None:
            errors.append(
                RowError(
                    r.row,
                    ID06,
                    f"ID06 card {r.id06_card} is not registered to any "
                    "employment; register the card first",
                )
            )
            continue
        _check_holder(r, employment, person(employment.person_id), errors)
        _check_no_other_key(r, employment, keys_of_employment(employment.id), errors)
        _check_employment_once(r, employment, employment_rows, errors)
        links.append(HandoutLink(r.row, r.key_serial, employment.id))
    if errors:
        raise ImportRejected(errors)
    return links


def _check_key_once(r: ReturnedRow, key_rows: dict[str, int], errors: list[RowError]) -> None:
    if r.key_serial in key_rows:
        errors.append(
            RowError(
                r.row,
                KEY_NUMBER,
                f"key {r.key_serial} is listed twice (also on row {key_rows[r.key_serial]})",
            )
        )
    else:
        key_rows[r.key_serial] = r.row


def _check_employment_once(
    r: ReturnedRow, employment: Employment, employment_rows: dict[str, int], errors: list[RowError]
) -> None:
    if employment.id in employment_rows:
        errors.append(
            RowError(
                r.row,
                ID06,
                f"employment {employment.id} (ID06 card {r.id06_card}) "
                f"gets two keys (also on row {employment_rows[employment.id]}); "
                "one physical key per employment",
            )
        )
    else:
        employment_rows[employment.id] = r.row


def _check_key_in_stock(r: ReturnedRow, found: Credential | None, errors: list[RowError]) -> None:
    if found is None:
        errors.append(
            RowError(
                r.row,
                KEY_NUMBER,
                f"key {r.key_serial} is not known; import its delivery manifest first",
            )
        )
        return
    if found.kind is not CredentialKind.KEY:
        errors.append(
            RowError(r.row, KEY_NUMBER, f"{r.key_serial} is a {found.kind.value}, not a key")
        )
        return
    if found.state is not CredentialState.DELIVERED:
        holder = f" to employment {found.employment_id}" if found.employment_id else ""
        errors.append(
            RowError(
                r.row,
                KEY_NUMBER,
                f"key {r.key_serial} is {found.state.value}{holder}; "
                "only a delivered key in stock can be handed out",
            )
        )


def _check_holder(
    r: ReturnedRow, employment: Employment, holder: Person | None, errors: list[RowError]
) -> None:
    if employment.id06.status is Id06Status.TERMINATED:
        errors.append(RowError(r.row, ID06, f"ID06 card {r.id06_card} is terminated"))
    if holder is None:
        errors.append(
            RowError(
                r.row,
                ID06,
                f"ID06 card {r.id06_card} belongs to employment "
                f"{employment.id}, whose person {employment.person_id} is not known",
            )
        )
        return
    for column, written, registered in (
        (FIRST_NAME, r.first_name, holder.first_name),
        (LAST_NAME, r.last_name, holder.last_name),
    ):
        if not _same_name(written, registered):
            errors.append(
                RowError(
                    r.row,
                    column,
                    f"'{written}' does not match the name registered for "
                    f"ID06 card {r.id06_card} ('{registered}')",
                )
            )


def _check_no_other_key(
    r: ReturnedRow, employment: Employment, held: list[Credential], errors: list[RowError]
) -> None:
    other = sorted(
        c.number
        for c in held
        if c.kind is CredentialKind.KEY and not c.terminal and c.number != r.key_serial
    )
    if other:
        errors.append(
            RowError(
                r.row,
                ID06,
                f"employment {employment.id} (ID06 card {r.id06_card}) "
                f"already holds key {', '.join(other)}; one physical key per employment: "
                "return or report the old key first",
            )
        )


__all__ = ["HandoutLink", "resolve_returned"]

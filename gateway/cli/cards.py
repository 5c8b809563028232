"""``lockgate cards``: the reception's routine for visitor and temporary cards, and
``lockgate report charges``.

Issuing a card asks for everything the routine requires: the holder's name, company and
mobile, the sponsor (no card without a contact person), the reason, the spaces, a valid-until
date and time (for a forgotten card: the end of the working day unless given), the holder's
presence in person and their acknowledgement of the duty to return the card (``--in-person``
and ``--return-duty``, or answered at the terminal). Returning a card erases its holder's
data; a lost employee card costs NOK 400, a visitor card nothing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gateway.charges import charges
from gateway.cli.common import (
    console,
    credential_number,
    domain_errors,
    fail,
    identifier,
    local,
    open_core,
    operator_name,
    parse_instant,
    print_json,
    validated,
)
from gateway.cli.documents import report_app
from gateway.cli.errors import BAD_INPUT
from gateway.commands import model as m
from gateway.commands.handlers import end_of_working_day
from gateway.core import Core
from gateway.domain.facts import CredentialKind, VisitorReason
from gateway.reports.holders import holder_of

cards_app = typer.Typer(
    help="Visitor and temporary cards: issue, extend or shorten, return, lost.",
    no_args_is_help=True,
)


def _confirmed(flag: bool, question: str, option: str) -> bool:
    if flag:
        return True
    if sys.stdin.isatty() and typer.confirm(question, default=False):
        return True
    fail(f"{option}: {question.rstrip('?')} — required by the routine", 2)


@cards_app.command("issue")
def cards_issue(
    number: Annotated[str, typer.Argument(help="The card's number.")],
    holder: Annotated[str, typer.Option("--holder", help="The holder's full name.")],
    company: Annotated[str, typer.Option("--company", help="The holder's company.")],
    mobile: Annotated[str, typer.Option("--mobile", help="The holder's mobile number.")],
    sponsor: Annotated[str, typer.Option("--sponsor", help="Employment id of the contact person.")],
    reason: Annotated[VisitorReason, typer.Option("--reason", help="Why the card is needed.")],
    space: Annotated[list[str], typer.Option("--space", help="A space it opens (repeat).")],
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="Valid until (ISO date-time, site time if no zone). Required except for "
            "forgot_card (default: the end of the working day).",
        ),
    ] = None,
    valid_from: Annotated[
        str | None, typer.Option("--from", help="Valid from (default now).")
    ] = None,
    in_person: Annotated[
        bool, typer.Option("--in-person", help="The holder is here in person.")
    ] = False,
    return_duty: Annotated[
        bool,
        typer.Option("--return-duty", help="The holder was told they must return the card."),
    ] = False,
) -> None:
    """Issue a visitor or temporary card."""
    operator = operator_name()
    number = credential_number(number, "NUMBER")
    sponsor = identifier(sponsor, "--sponsor")
    space = [identifier(s, "--space") for s in space]
    start = parse_instant(valid_from, "--from")
    end = parse_instant(until, "--until")
    present = _confirmed(in_person, "Is the holder here in person?", "--in-person")
    told = _confirmed(
        return_duty, "Has the holder acknowledged the duty to return the card?", "--return-duty"
    )
    with open_core() as core:
        if end is None:
            if reason is not VisitorReason.FORGOT_CARD:
                fail("--until: every card expires at a date and time; give --until", BAD_INPUT)
            end = end_of_working_day(start or core.clock(), core.cfg)
        cmd = validated(
            m.IssueVisitorCard,
            {
                "number": number,
                "holder_name": holder,
                "company": company,
                "mobile": mobile,
                "sponsor_employment_id": sponsor,
                "reason": reason,
                "space_ids": tuple(space),
                "valid_until": end,
                "valid_from": start,
                "confirmed_in_person": present,
                "return_duty_acknowledged": told,
            },
            {
                "number": "NUMBER",
                "holder_name": "--holder",
                "company": "--company",
                "mobile": "--mobile",
                "sponsor_employment_id": "--sponsor",
                "space_ids": "--space",
                "valid_until": "--until",
                "valid_from": "--from",
            },
        )
        with domain_errors():
            data = core.execute(cmd, operator=operator)
    until_at = datetime.fromisoformat(data["valid_until"])
    console.print(
        f"visitor card {number} issued, valid until {local(until_at)}; "
        "the holder must return it (no charge for visitor cards)"
    )


@cards_app.command("change")
def cards_change(
    number: Annotated[str, typer.Argument(help="The card's number.")],
    until: Annotated[str, typer.Option("--until", help="New valid-until date and time.")],
) -> None:
    """Extend or shorten a visitor card's validity."""
    operator = operator_name()
    number = credential_number(number, "NUMBER")
    end = parse_instant(until, "--until")
    cmd = validated(
        m.ChangeVisitorCard,
        {"number": number, "valid_until": end},
        {"number": "NUMBER", "valid_until": "--until"},
    )
    with open_core() as core, domain_errors():
        core.execute(cmd, operator=operator)
    console.print(f"visitor card {number} now valid until {local(end)}")


def _kind(core: Core, number: str) -> CredentialKind:
    cred = core.engine.facts.credentials.get(number)
    if cred is None:
        fail(f"NUMBER: credential {number} is not registered")
    return cred.kind


@cards_app.command("return")
def cards_return(
    number: Annotated[str, typer.Argument(help="The card's number.")],
    at: Annotated[str | None, typer.Option("--at", help="When (default now).")] = None,
) -> None:
    """Take a card back: it is revoked; a visitor card's holder data is erased."""
    operator = operator_name()
    number = credential_number(number, "NUMBER")
    when = parse_instant(at, "--at")
    with open_core() as core:
        kind = _kind(core, number)
        cmd: m.Command = (
            m.ReturnVisitorCard(number=number, at=when)
            if kind is CredentialKind.VISITOR_CARD
            else m.ReportCredential(credential_number=number, outcome="returned", at=when)
        )
        with domain_errors():
            core.execute(cmd, operator=operator)
    erased = " and its holder's data erased" if kind is CredentialKind.VISITOR_CARD else ""
    console.print(f"{kind.value} {number} returned: revoked{erased}")


@cards_app.command("lost")
def cards_lost(
    number: Annotated[str, typer.Argument(help="The card's number.")],
    at: Annotated[str | None, typer.Option("--at", help="When (default now).")] = None,
) -> None:
    """Record a lost card: revoked at once; an employee card costs its holder NOK 400."""
    operator = operator_name()
    number = credential_number(number, "NUMBER")
    when = parse_instant(at, "--at")
    with open_core() as core:
        kind = _kind(core, number)
        cmd: m.Command = (
            m.ReturnVisitorCard(number=number, at=when, lost=True)
            if kind is CredentialKind.VISITOR_CARD
            else m.ReportCredential(credential_number=number, outcome="lost", at=when)
        )
        with domain_errors():
            data = core.execute(cmd, operator=operator)
    fee = int(data.get("fee_nok", 0))
    billed = data.get("billed_employment")
    charged = f"; NOK {fee} charged to employment {billed}" if fee else "; no charge"
    console.print(f"{kind.value} {number} recorded lost and revoked{charged}")


@cards_app.command("list")
def cards_list(
    include_closed: Annotated[
        bool, typer.Option("--all", help="Returned and lost cards too.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Visitor cards out: holder, sponsor, validity, whether it expired unreturned."""
    with open_core() as core:
        facts = core.engine.facts
        now = core.clock()
        rows: list[_CardRow] = []
        for number, card in sorted(facts.visitor_cards.items(), key=lambda kv: int(kv[0])):
            cred = facts.credentials.get(number)
            if cred is None or (cred.terminal and not include_closed):
                continue
            rows.append(
                _CardRow(
                    number=number,
                    state=cred.state.value,
                    holder=holder_of(core.engine, number),
                    sponsor=holder_of_employment(core, card.sponsor_employment_id),
                    reason=card.reason.value,
                    valid_until=card.valid_until,
                    expired=card.valid_until <= now,
                )
            )
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} visitor cards")
    for col in ("number", "state", "holder", "sponsor", "reason", "valid until", ""):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r.number,
            r.state,
            escape(r.holder),
            escape(r.sponsor),
            r.reason,
            local(r.valid_until),
            "[red]expired, not returned[/]" if r.expired and r.state == "in_service" else "",
        )
    console.print(table)


@dataclass(frozen=True, slots=True)
class _CardRow:
    number: str
    state: str
    holder: str
    sponsor: str
    reason: str
    valid_until: datetime
    expired: bool


def holder_of_employment(core: Core, employment_id: str) -> str:
    facts = core.engine.facts
    emp = facts.employments.get(employment_id)
    if emp is None:
        return employment_id
    person = facts.persons.get(emp.person_id)
    return f"{person.first_name} {person.last_name}" if person else employment_id


@report_app.command("charges")
def report_charges(
    since: Annotated[str | None, typer.Option("--since", help="ISO time: from then on.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Lost-card charges (NOK 400 per lost employee card), with whom to bill."""
    start = parse_instant(since, "--since")
    with open_core() as core, core.db.session(readonly=True) as s:
        found = charges(s, since=start)
        billed = {c.id: holder_of_employment(core, c.employment_id or "-") for c in found}
    if as_json:
        print_json([c.as_json() | {"billed": billed[c.id]} for c in found])
        return
    table = Table(title=f"{len(found)} charges, NOK {sum(c.amount_nok for c in found)} in all")
    for col in ("at", "credential", "billed", "employment", "NOK", "reason", "recorded by"):
        table.add_column(col)
    for c in found:
        table.add_row(
            local(c.at),
            c.credential,
            escape(billed[c.id]),
            c.employment_id or "-",
            str(c.amount_nok),
            c.reason,
            escape(c.operator),
        )
    console.print(table)


__all__ = ["cards_app"]

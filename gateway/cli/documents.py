"""``lockgate import``, ``lockgate receipt`` and ``lockgate report``: files in, documents out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gateway.cli.common import (
    STATE,
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
from gateway.cli.errors import BAD_INPUT
from gateway.commands import model as m
from gateway.core import Core, Submission
from gateway.documents.receipt import ReceiptDocument, receipt_for, render_receipt
from gateway.domain.errors import DomainError
from gateway.domain.facts import DeliveryManifest
from gateway.domain.locks import LockRef, LockRefError
from gateway.domain.timeutil import utcnow
from gateway.imports.manifest import (
    parse_delivery_manifest,
    parse_returned_manifest,
    resolve_returned,
)
from gateway.reports.applications import pending_applications
from gateway.reports.expiring import expiring

import_app = typer.Typer(
    help="Import delivery manifests and returned handout lists.", no_args_is_help=True
)
report_app = typer.Typer(help="Reports operators expect.", no_args_is_help=True)


@import_app.command("manifest")
def import_manifest(
    file: Annotated[
        Path,
        typer.Argument(help="CSV or XLSX with a key-number column.", exists=True, dir_okay=False),
    ],
    order: Annotated[str, typer.Option("--order", help="The key order the delivery is for.")],
    delivered_at: Annotated[
        str | None, typer.Option(help="ISO time of delivery (default now).")
    ] = None,
) -> None:
    """Register a delivery manifest: every key in FILE, inactive, against ORDER. All or nothing."""
    operator = operator_name()
    order = identifier(order, "--order")
    when = parse_instant(delivered_at, "--delivered-at") or utcnow()
    with domain_errors():
        serials = parse_delivery_manifest(file)
        with open_core() as core:
            data = core.execute(
                m.RegisterDelivery(
                    manifest=DeliveryManifest(
                        order_id=order, delivered_at=when, key_serials=tuple(serials)
                    )
                ),
                operator=operator,
            )
    console.print(
        f"registered {len(serials)} inactive keys against order {order} "
        f"({data.get('delivered')} delivered, order {data.get('status')})"
    )


@import_app.command("returned")
def import_returned(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or XLSX: key number, first name, last name, ID06 card number.",
            exists=True,
            dir_okay=False,
        ),
    ],
    receipts: Annotated[
        Path | None,
        typer.Option(help="Write each receipt PDF to this folder.", file_okay=False),
    ] = None,
) -> None:
    """Link each key in the returned manifest to the employment of its ID06 card, producing
    the handout receipts. Any bad row rejects the whole file."""
    operator = operator_name()
    with domain_errors():
        rows = parse_returned_manifest(file)
        with open_core() as core:
            facts = core.engine.facts
            links = resolve_returned(
                rows,
                credential=facts.credentials.get,
                employment_by_id06=lambda card: facts.employments.get(
                    facts.employment_by_card.get(card, "")
                ),
                person=facts.persons.get,
                keys_of_employment=lambda e: [
                    facts.credentials[n] for n in facts.credentials_by_employment.get(e, ())
                ],
            )
            core.submit_many(
                [
                    Submission(
                        m.HandOut(
                            credential_number=link.credential_number,
                            employment_id=link.employment_id,
                        ),
                        operator,
                    )
                    for link in links
                ],
                atomic=True,
            )
            if receipts is not None:
                receipts.mkdir(parents=True, exist_ok=True)
                for link in links:
                    path = receipts / f"receipt-{link.credential_number}.pdf"
                    path.write_bytes(render_receipt(receipt_document(core, link.credential_number)))
    console.print(
        f"linked {len(links)} keys; receipts produced"
        + (f" in {receipts}" if receipts else " (print them with lockgate receipt KEY)")
    )


def receipt_document(core: Core, number: str) -> ReceiptDocument:
    """The handout receipt of credential ``number``; a clear error when there is none."""
    try:
        return receipt_for(core.engine.facts, number, STATE.settings.site.timezone)
    except DomainError as exc:
        fail(str(exc))


def receipt_command(
    args: Annotated[
        list[str],
        typer.Argument(
            help="KEY to produce its receipt PDF, or: sign KEY to record the holder's signature.",
            metavar="KEY | sign KEY",
        ),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="PDF file to write.", dir_okay=False)
    ] = None,
    signed_at: Annotated[str | None, typer.Option("--at", help="ISO time of signing.")] = None,
) -> None:
    """Produce a key handout receipt (PDF), or record that it was signed (``receipt sign KEY``)."""
    if args and args[0] == "sign":
        if len(args) != 2:
            fail("KEY: give one key: lockgate receipt sign KEY", BAD_INPUT)
        if out is not None:
            fail("--out: a receipt is written by lockgate receipt KEY, not by sign", BAD_INPUT)
        number = credential_number(args[1], "KEY")
        operator = operator_name()
        when = parse_instant(signed_at, "--at")
        with domain_errors(), open_core() as core:
            core.execute(m.SignReceipt(credential_number=number, signed_at=when), operator=operator)
            state = core.engine.state(number)
        console.print(
            f"receipt of {number} signed; credential in service"
            + (
                ""
                if state is None or state.active
                else f" (not active yet: {', '.join(r.value for r in state.reasons)})"
            )
        )
        return
    if len(args) != 1:
        fail("KEY: give one key: lockgate receipt KEY [--out FILE] or receipt sign KEY", BAD_INPUT)
    if signed_at is not None:
        fail("--at: the time of signing goes with lockgate receipt sign KEY", BAD_INPUT)
    number = credential_number(args[0], "KEY")
    target = out or Path(f"receipt-{number}.pdf")
    if not target.parent.is_dir():
        fail(f"--out: {target.parent} is not a folder", BAD_INPUT)
    with open_core() as core:
        pdf = render_receipt(receipt_document(core, number))
    try:
        target.write_bytes(pdf)
    except OSError as exc:
        fail(f"--out: {target}: {exc.strerror or exc}", BAD_INPUT)
    console.print(f"wrote {target}")


@report_app.command("expiring")
def report_expiring(
    days: Annotated[int, typer.Option(min=0, max=3650, help="Look this many days ahead.")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """ID06 cards, competences, agreements, visitor cards and credentials that lapse within
    DAYS days."""
    with open_core() as core:
        facts = core.engine.facts
        lapses = {
            n: s.window.end
            for n, s in core.engine.states.items()
            if s.active and s.window is not None and s.window.end is not None
        }
        items = expiring(
            now=core.clock(),
            days=days,
            tz=core.cfg.timezone,
            agreements=facts.agreements.values(),
            employments=facts.employments.values(),
            competences=[c for by in facts.competences.values() for c in by.values()],
            visitor_cards=facts.visitor_cards.values(),
            credential_lapses=lapses,
        )
    if as_json:
        print_json(items)
        return
    table = Table(title=f"lapsing within {days} days: {len(items)}")
    for col in ("lapses", "days", "kind", "subject", "organisation", "detail"):
        table.add_column(col)
    for i in items:
        table.add_row(
            local(i.lapses_at), str(i.days_left), i.kind, i.subject, i.organisation or "-", i.detail
        )
    console.print(table)


@report_app.command("applications")
def report_applications(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Access applications awaiting a decision, expedited first, with their due dates."""
    settings = STATE.settings
    with open_core() as core:
        facts = core.engine.facts
        due = pending_applications(
            [a for by in facts.applications.values() for a in by.values()],
            facts.assignments,
            now=core.clock(),
            tz=core.cfg.timezone,
            working_days=settings.rules.application_working_days,
            expedited_working_days=settings.rules.expedited_working_days,
        )
    if as_json:
        print_json(due)
        return
    table = Table(title=f"{len(due)} applications awaiting a decision")
    for col in ("assignment", "rev", "expedited", "submitted", "due", "working days left", ""):
        table.add_column(col)
    for d in due:
        table.add_row(
            f"{d.assignment_id} ({d.assignment_name})",
            str(d.revision),
            "yes" if d.expedited else "",
            local(d.submitted_at),
            local(d.due_at),
            str(d.working_days_left),
            "[bold red]OVERDUE[/]" if d.overdue else "",
        )
    console.print(table)


@report_app.command("exposure")
def report_exposure(
    lock: Annotated[
        str | None,
        typer.Option(
            "--lock",
            help="Only this lock: cylinder:NUMBER or door:CONTROLLER/DOOR (also accepted: "
            "NUMBER, CONTROLLER/DOOR, CONTROLLER:DOOR).",
        ),
    ] = None,
    credential: Annotated[
        str | None, typer.Option("--credential", help="Only this credential.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Revoked credentials that can still open something: every such lock, until when, and
    whether its blacklist or controller has confirmed the revocation."""
    from gateway.reports.exposure import BLOCKED, exposure

    try:
        only = LockRef.parse(lock) if lock is not None else None
    except LockRefError as exc:
        fail(f"--lock: {exc}", BAD_INPUT)
    number = credential_number(credential, "--credential") if credential is not None else None
    with open_core(sync=True) as core, core.db.session(readonly=True) as s:
        rows = [
            r
            for r in exposure(s, core.engine, core.clock())
            if (only is None or r.concerns(only)) and (number is None or r.credential == number)
        ]
    if as_json:
        print_json(rows)
        return
    open_rows = [r for r in rows if r.status != BLOCKED]
    table = Table(
        title=f"exposure: {len(open_rows)} locks still open to revoked credentials, "
        f"{len(rows) - len(open_rows)} blocked by confirmed blacklists"
    )
    for col in ("credential", "kind", "why revoked", "lock", "status", "until", "detail"):
        table.add_column(col)
    for r in rows:
        colour = "green" if r.status == BLOCKED else "red"
        table.add_row(
            r.credential,
            r.kind,
            ", ".join(r.reasons),
            r.lock,
            f"[{colour}]{r.status}[/]",
            local(r.until),
            r.detail,
        )
    console.print(table)


def order_command(
    org_number: Annotated[str, typer.Argument(help="Organisation number of the orderer.")],
    quantity: Annotated[int, typer.Option(min=1, max=10000, help="Number of keys.")],
    address: Annotated[str, typer.Option(help="Delivery address.")],
    order_id: Annotated[
        str | None, typer.Option("--id", help="Order id (default: generated).")
    ] = None,
) -> None:
    """Register a key order (behovsanmälan) of an organisation with a key grant agreement;
    its delivery manifest is then imported with ``lockgate import manifest FILE --order ID``."""
    from gateway.domain.facts import KeyOrder

    operator = operator_name()
    oid = order_id or f"order-{utcnow().strftime('%Y%m%d%H%M%S')}"
    order = validated(
        KeyOrder,
        {
            "id": oid,
            "org_number": org_number,
            "quantity": quantity,
            "delivery_address": address,
            "ordered_at": utcnow(),
        },
        {
            "id": "--id",
            "org_number": "ORG_NUMBER",
            "quantity": "--quantity",
            "delivery_address": "--address",
        },
    )
    with domain_errors(), open_core() as core:
        core.execute(m.PlaceKeyOrder(order=order), operator=operator)
    console.print(f"key order {oid}: {quantity} keys for {order.org_number}")

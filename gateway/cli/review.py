"""``lockgate report access-review`` and ``lockgate review``: the quarterly access review.

The report lists every live credential with its holder, sponsor and what it opens, grouped by
organisation, and warns when the last recorded review is older than a quarter. An
administrator or the operations manager records the review with ``lockgate review record``,
naming the credentials to remove (``--remove``, repeatable): they are revoked in the same
transaction.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gateway.cli.common import (
    console,
    domain_errors,
    err_console,
    fail,
    local,
    open_core,
    operator_name,
    print_json,
)
from gateway.cli.documents import report_app
from gateway.commands.review import RecordAccessReview
from gateway.reports.access_review import AccessReview, access_review
from gateway.reviews import last_review, reviews

review_app = typer.Typer(help="Record and list quarterly access reviews.", no_args_is_help=True)


def _print_review(review: AccessReview) -> None:
    for group in review.groups:
        table = Table(title=escape(f"{group.name}: {len(group.lines)}"))
        for col in ("credential", "kind", "state", "holder", "sponsor", "opens", "until", "note"):
            table.add_column(col)
        for line in group.lines:
            opens = ", ".join(o.space_name for o in line.opens) or "-"
            note = "; ".join(line.flags)
            if not line.active and line.reasons:
                note = "; ".join(filter(None, [note, "inactive: " + ", ".join(line.reasons)]))
            cells = (line.number, line.kind, line.state, line.holder, line.sponsor, opens)
            table.add_row(*(escape(c) for c in cells), local(line.valid_until), escape(note))
        console.print(table)
    last = review.last_review
    console.print(
        f"{review.credentials} credentials; last review: "
        + (f"{local(last.at)} by {last.reviewer}" if last else "never")
    )


@report_app.command("access-review")
def report_access_review(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every credential, its holder, sponsor and what it can open, grouped for the quarterly
    review; warns when the last review is older than a quarter."""
    with open_core() as core:
        with core.db.session(readonly=True) as s:
            last = last_review(s)
        review = access_review(core.engine, core.clock(), last, core.cfg.timezone)
    if as_json:
        print_json(review.as_json())
    else:
        _print_review(review)
    for warning in review.warnings:
        err_console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)


@review_app.command("record")
def review_record(
    remove: Annotated[
        list[str] | None,
        typer.Option("--remove", help="A credential to revoke (repeat for each)."),
    ] = None,
    note: Annotated[str, typer.Option("--note", help="A note on the review.")] = "",
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Record the access review as done (administrators and the operations manager); the
    credentials given with --remove are revoked."""
    operator = operator_name()
    numbers = tuple(remove or ())
    try:
        cmd = RecordAccessReview(remove=numbers, note=note)
    except ValueError as exc:
        fail(f"--remove/--note: {exc}", 2)
    with open_core() as core:
        facts = core.engine.facts
        for n in numbers:
            if n not in facts.credentials:
                fail(f"--remove: credential {n} is not registered", 2)
        if numbers and not yes:
            console.print("to revoke: " + ", ".join(numbers))
            if not typer.confirm("Record the review and revoke these?", default=False):
                fail("nothing recorded", 1)
        with domain_errors():
            data = core.execute(cmd, operator=operator)
    console.print(
        f"access review recorded: {data['credentials_listed']} credentials reviewed, "
        f"{len(data['removed'])} revoked"
        + (f" ({', '.join(data['removed'])})" if data["removed"] else "")
    )


@review_app.command("list")
def review_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every recorded access review."""
    with open_core() as core, core.db.session(readonly=True) as s:
        found = reviews(s)
    if as_json:
        print_json([r.as_json() for r in found])
        return
    table = Table(title=f"{len(found)} access reviews")
    for col in ("at", "reviewer", "credentials", "revoked"):
        table.add_column(col)
    for r in found:
        table.add_row(
            local(r.at), escape(r.reviewer), str(r.credentials), ", ".join(r.removed) or "-"
        )
    console.print(table)


__all__ = ["review_app"]

"""``lockgate keys`` and ``lockgate explain``: what a credential may open, until when, why."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gateway.cli.common import (
    console,
    credential_number,
    fail,
    local,
    open_core,
    parse_instant,
    print_json,
)
from gateway.cli.errors import BAD_INPUT
from gateway.domain.facts import CredentialKind
from gateway.domain.locks import LockRef, LockRefError
from gateway.reports.holders import holder_of
from gateway.rules import DESCRIPTIONS, Explanation, explain

keys_app = typer.Typer(help="List and inspect keys, tags and visitor cards.", no_args_is_help=True)


@keys_app.command("list")
def keys_list(
    kind: Annotated[CredentialKind | None, typer.Option(help="Only this kind.")] = None,
    inactive: Annotated[bool, typer.Option("--inactive", help="Only inactive ones.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every credential with its holder, state and derived activity."""
    with open_core() as core:
        engine = core.engine
        rows = []
        for number in sorted(engine.facts.credentials, key=lambda n: (len(n), n)):
            cred = engine.facts.credentials[number]
            state = engine.states.get(number)
            if kind is not None and cred.kind is not kind:
                continue
            if inactive and state is not None and state.active:
                continue
            rows.append((cred, state))
        if as_json:
            print_json(
                [
                    {
                        "number": c.number,
                        "kind": c.kind.value,
                        "state": c.state.value,
                        "holder": holder_of(engine, c.number),
                        "derived": s.as_json() if s else None,
                    }
                    for c, s in rows
                ]
            )
            return
        table = Table(title=f"{len(rows)} credentials")
        for col in ("number", "kind", "state", "holder", "active", "until", "reasons"):
            table.add_column(col)
        for cred, state in rows:
            table.add_row(
                cred.number,
                cred.kind.value,
                cred.state.value,
                escape(holder_of(engine, cred.number)),
                "[green]yes[/]" if state and state.active else "[red]no[/]",
                local(state.window.end) if state and state.window else "-",
                ", ".join(r.value for r in state.reasons) if state else "",
            )
        console.print(table)


@keys_app.command("show")
def keys_show(
    number: Annotated[str, typer.Argument(help="Key serial, tag or card number.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One credential: holder, lifecycle state, derived state and what it opens."""
    number = credential_number(number, "NUMBER")
    with open_core() as core:
        if number not in core.engine.facts.credentials:
            fail(f"credential {number} is not registered")
        result = explain(core.engine, number)
        if as_json:
            print_json(result.as_json() | {"holder": holder_of(core.engine, number)})
            return
        _print_explanation(result, holder_of(core.engine, number), checks=False)


def _print_explanation(result: Explanation, holder: str, *, checks: bool = True) -> None:
    state = result.state
    console.print(f"[bold]{result.number}[/]  holder: {escape(holder)}  at {local(result.at)}")
    if state is None:
        console.print("[red]not registered[/]")
        return
    verdict = "[green]ACTIVE[/]" if state.active else "[red]NOT ACTIVE[/]"
    console.print(f"{state.kind.value}: {verdict}  revision {state.revision}")
    for r in state.reasons:
        console.print(f"  [red]{r.value}[/]: {DESCRIPTIONS[r]}")
    if state.window:
        console.print(
            f"  valid {local(state.window.start)} – {local(state.window.end)}"
            + (
                f", revalidate every {state.revalidation_days} days"
                if state.revalidation_days
                else ""
            )
        )
    if result.opens:
        table = Table(title="may open")
        for col in ("lock", "space", "from", "until", "schedule"):
            table.add_column(col)
        for o in result.opens:
            table.add_row(
                o.lock,
                o.space_id,
                local(o.window.start),
                local(o.window.end),
                o.schedule or "any time",
            )
        console.print(table)
    for space, reason in state.denied:
        console.print(f"  not granted: {space} ({reason.value}: {DESCRIPTIONS[reason]})")
    if checks:
        table = Table(title="conditions checked")
        for col in ("", "condition", "source", "detail", "reason"):
            table.add_column(col)
        for c in result.checks + result.lock_checks:
            table.add_row(
                "[green]✔[/]" if c.held else "[red]✘[/]",
                escape(c.condition),
                escape(c.source),
                escape(c.detail),
                f"[red]{c.reason.value}[/]" if c.reason and not c.held else "",
            )
        console.print(table)
    if result.lock is not None:
        answer = "[green]CAN OPEN[/]" if result.can_open else "[red]CANNOT OPEN[/]"
        console.print(f"{result.lock}: {answer}")


def explain_command(
    credential: Annotated[str, typer.Argument(help="Key serial, tag or card number.")],
    lock: Annotated[
        str | None,
        typer.Argument(
            help="A lock: cylinder:NUMBER or door:CONTROLLER/DOOR (also accepted: NUMBER, "
            "CONTROLLER/DOOR, CONTROLLER:DOOR)."
        ),
    ] = None,
    at: Annotated[str | None, typer.Option(help="ISO time to evaluate at (default now).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Why can or can't CREDENTIAL open LOCK: every condition, its source fact, and the result."""
    credential = credential_number(credential, "CREDENTIAL")
    try:
        ref = LockRef.parse(lock) if lock else None
    except LockRefError as exc:
        fail(f"LOCK: {exc}", BAD_INPUT)
    when = parse_instant(at, "--at")
    with open_core() as core:
        result = explain(core.engine, credential, ref, when)
        if as_json:
            print_json(result.as_json())
        else:
            _print_explanation(result, holder_of(core.engine, credential))
        if result.state is None:
            raise typer.Exit(1)

"""The derived state of every credential, as the demo shows it at the end."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gateway.core import Core
from gateway.reports.holders import holder_of


def show_states(core: Core, console: Console) -> None:
    """Print every credential's derived state with the reasons."""
    engine = core.engine
    table = Table(title="derived credential states", show_lines=False)
    for col in ("credential", "kind", "holder", "active", "opens", "reasons"):
        table.add_column(col)
    for number in sorted(engine.facts.credentials, key=lambda n: (len(n), n)):
        state = engine.states[number]
        spaces = ", ".join(g.space_id for g in state.grants) or "-"
        reasons = ", ".join(r.value for r in state.reasons)
        denied = "; ".join(f"{s}: {r.value}" for s, r in state.denied)
        table.add_row(
            number,
            state.kind.value,
            escape(holder_of(engine, number)),
            "[green]yes[/]" if state.active else "[red]no[/]",
            spaces,
            reasons + (f" [dim]not granted {denied}[/]" if denied else ""),
        )
    console.print(table)
    for cid in sorted(engine.controller_ids()):
        dc = engine.controller(cid)
        console.print(
            f"controller {cid}: {len(dc.entries)} allow-list entries "
            f"({', '.join(e.credential for e in dc.entries)}), revision {dc.revision}"
        )

"""Load the sample site into a fresh database and show what the rules engine derives."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gateway.core import Core, Submission
from gateway.rules.config import RulesConfig
from gateway.sample import OPERATOR, sample_commands
from gateway.store import migrate
from gateway.store.database import Database, default_sqlite_url


def load_sample(core: Core, now: datetime) -> None:
    """Submit the sample story's commands (all must be accepted)."""
    today = now.astimezone(core.cfg.timezone).date()
    core.submit_many(
        [Submission(c, OPERATOR) for c in sample_commands(today, core.cfg.timezone)],
        atomic=True,
    )


def fresh_database(folder: Path) -> Database:
    """A new, migrated SQLite database ``lockgate-demo.db`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lockgate-demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = default_sqlite_url(path)
    migrate.upgrade(url)
    return Database(url)


def show_states(core: Core, console: Console) -> None:
    """Print every credential's derived state with the reasons."""
    from gateway.cli.credentials import holder_of

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


def run(folder: Path, console: Console, cfg: RulesConfig | None = None) -> Core:
    db = fresh_database(folder)
    core = Core(db, cfg)
    core.load()
    load_sample(core, core.clock())
    show_states(core, console)
    console.print(f"database: {db.url}")
    return core


__all__ = ["default_sqlite_url", "fresh_database", "load_sample", "run", "show_states"]

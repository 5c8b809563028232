"""``lockgate retention run``: erase personal data and history older than the retention
period (``retention.personal_data_days``, default 730), as the gateway's own retention service
does periodically. Administrators, or a machine operator with the ``maintenance`` role."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli.common import STATE, console, domain_errors, open_core, operator_name, print_json
from gateway.retention import RetentionJob

retention_app = typer.Typer(help="Retention of personal data.", no_args_is_help=True)


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would be erased.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Erase what the retention period no longer allows; print what was erased (ids and
    counts, never the data)."""
    operator = operator_name()
    with open_core() as core, domain_errors():
        report = RetentionJob(core, STATE.settings.retention).run(operator, dry_run=dry_run)
    if as_json:
        print_json(report.as_json())
        return
    verb = "would erase" if dry_run else "erased"
    counts = {k: v for k, v in report.counts().items() if v}
    console.print(
        f"retention (data older than {report.cutoff.date().isoformat()}) {verb}: "
        + (", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()) or "nothing")
    )


__all__ = ["retention_app"]

"""``lockgate audit``: verify the hash chain, read it, anchor its head.

``verify`` and ``anchor`` read only hashes and need no password. ``show`` reveals who did
what to whom, so the operator authenticates (every role may read the log) and the reading is
itself logged (``audit.read``: the filter, how many entries, whether personal data was shown).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from gateway.audit import log as audit_log
from gateway.audit.anchor import AnchorFileError, check_anchors, read_anchors, write_anchor
from gateway.audit.chain import Entry, check_subject
from gateway.audit.sink import lock_subject
from gateway.auth.authorizer import Authorizer, Forbidden
from gateway.auth.manage import record_refusal
from gateway.auth.roles import READ_LOG
from gateway.cli.common import (
    authenticate,
    console,
    credential_number,
    database,
    fail,
    local,
    operator_name,
    parse_instant,
    print_json,
)
from gateway.cli.errors import BAD_INPUT
from gateway.domain.locks import LockRef, LockRefError
from gateway.domain.timeutil import utcnow
from gateway.store import migrate
from gateway.store.database import Database

audit_app = typer.Typer(
    help="The tamper-evident audit log: verify, show, anchor.", no_args_is_help=True
)


def _open() -> Database:
    db = database()
    try:
        migrate.check_up_to_date(db.url)
    except Exception as exc:
        db.dispose()
        fail(str(exc))
    return db


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        list[Path] | None,
        typer.Option(
            "--anchor",
            help="Anchor file(s) the log must still match.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Walk the chain: recompute every hash and link. Exits 1 naming the first entry that was
    altered, removed or reordered (or that no longer matches an anchor)."""
    db = _open()
    try:
        with db.session(readonly=True) as s:
            result = audit_log.verify(s)
            problem = result.problem
            if problem is None and anchor:
                try:
                    anchors = [a for path in anchor for a in read_anchors(path)]
                except AnchorFileError as exc:
                    fail(str(exc), 2)
                problem = check_anchors(s, anchors)
    finally:
        db.dispose()
    head = result.head
    if as_json:
        print_json(
            {
                "ok": problem is None,
                "entries": result.entries,
                "head": head.as_json() if head else None,
                "problem": None
                if problem is None
                else {"seq": problem.seq, "kind": problem.kind, "message": problem.message},
            }
        )
    elif problem is None:
        where = f"; head entry {head.seq} {head.hash}" if head else ""
        console.print(f"audit log verified: {result.entries} entries{where}")
    else:
        console.print(f"[bold red]audit log NOT valid[/] at entry {problem.seq}: {problem.message}")
    if problem is not None:
        raise typer.Exit(1)


def _summary(entry: Entry) -> str:
    data: dict[str, Any] = dict(entry.data)
    if "command" in data:
        status = data.pop("status", "")
        error = data.get("error") or {}
        return f"{status}" + (f": {error.get('code')} {error.get('message')}" if error else "")
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


@audit_app.command("show")
def audit_show(
    credential: Annotated[
        str | None, typer.Option("--credential", help="Only entries about this credential.")
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option("--subject", help='Only entries about this subject ("person p-anna").'),
    ] = None,
    lock: Annotated[
        str | None,
        typer.Option(
            "--lock",
            help="Only entries about this lock: cylinder:NUMBER or door:CONTROLLER/DOOR (also "
            "accepted: NUMBER, CONTROLLER/DOOR, CONTROLLER:DOOR).",
        ),
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO time: from then on.")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Only this actor.")] = None,
    action: Annotated[str | None, typer.Option("--action", help="Only this action.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="The newest N entries.")] = 200,
    personal: Annotated[
        bool, typer.Option("--personal", help="Show the personal parts still held.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show log entries (newest LIMIT matching the filters, oldest first). Every operator may
    read the log; the reading is logged."""
    if sum(x is not None for x in (credential, subject, lock)) > 1:
        fail("--credential/--subject/--lock: give one of them, not several", BAD_INPUT)
    if lock is not None:
        try:
            subject = lock_subject(LockRef.parse(lock))
        except LockRefError as exc:
            fail(f"--lock: {exc}", BAD_INPUT)
    if credential is not None:
        credential = credential_number(credential, "--credential")
    if subject is not None:
        try:
            check_subject(subject)
        except ValueError as exc:
            fail(f"--{exc}", BAD_INPUT)  # the message starts with "subject: "
    wanted = f"credential {credential}" if credential is not None else subject
    start: datetime | None = parse_instant(since, "--since")
    name = operator_name()
    db = _open()
    try:
        authenticate(db)
        now = utcnow()
        try:
            with db.session() as s:
                Authorizer(authenticated={name}).require(s, name, READ_LOG)
                found = audit_log.entries(
                    s,
                    subject=wanted,
                    since=start,
                    actor=actor,
                    action=action,
                    limit=limit,
                    newest_first=True,
                )
                audit_log.append(
                    s,
                    at=now,
                    actor=name,
                    action="audit.read",
                    subjects=[wanted] if wanted else [],
                    data={
                        "filter": {
                            "subject": wanted,
                            "since": start,
                            "actor": actor,
                            "action": action,
                            "limit": limit,
                        },
                        "entries": len(found),
                        "personal": personal,
                    },
                )
        except Forbidden as exc:
            record_refusal(db, at=now, actor=name, action="audit.read", subjects=[], error=exc)
            fail(f"{exc.code}: {exc}")
    finally:
        db.dispose()
    if as_json:
        print_json([e.as_json(personal=personal) for e in found])
        return
    table = Table(title=f"{len(found)} audit entries")
    for col in ("seq", "at", "actor", "action", "subject", "outcome / data"):
        table.add_column(col)
    if personal:
        table.add_column("personal")
    for e in found:
        row = [str(e.seq), local(e.at), e.actor, e.action, e.subject, _summary(e)]
        if personal:
            row.append(
                "[erased]"
                if e.erased_at
                else json.dumps(e.personal, ensure_ascii=False)
                if e.personal
                else "-"
            )
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)


@audit_app.command("anchor")
def audit_anchor(
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", help="Append the anchor to this file (default: print it).", dir_okay=False
        ),
    ] = None,
) -> None:
    """Write the head of the chain (seq, hash, at): keep it where the database's users cannot
    rewrite it; `lockgate audit verify --anchor FILE` checks the log still matches."""
    db = _open()
    try:
        with db.session(readonly=True) as s:
            head = audit_log.head(s)
    finally:
        db.dispose()
    if head is None:
        fail("the audit log is empty: nothing to anchor")
    if file is None:
        sys.stdout.write(json.dumps({**head.as_json(), "anchored_at": utcnow().isoformat()}) + "\n")
        return
    try:
        write_anchor(file, head, at=utcnow())
    except OSError as exc:
        fail(f"--file: {file}: {exc.strerror or exc}", BAD_INPUT)
    console.print(f"anchored entry {head.seq} ({head.hash}) in {file}")


__all__ = ["audit_app"]

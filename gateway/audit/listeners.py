"""The core listener of the audit: every command, accepted or refused, in the log.

It runs inside the command's transaction (see :class:`gateway.core.ChangeListener`), so the
entry and the change commit together or not at all.

:class:`CommandLog` appends one entry per command, accepted or refused: the actor is the
operator, the action the command's name, the subjects the ids it touches; ``data`` holds the
non-personal fields, the result or the refusal, and where the command came from; the personal
fields (:mod:`gateway.audit.fields`) go to the erasable part. When a command erases a fact's
personal data (a visitor card returned or lost, a person erased by retention), the personal
parts of every entry about that card or person are erased in the same transaction: the card's
history is detached from the person, and the chain still verifies.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gateway.audit import log as audit_log
from gateway.audit.chain import jsonable
from gateway.audit.fields import command_subjects, split_command
from gateway.commands.context import CommandContext
from gateway.core import Core
from gateway.domain.facts import ERASED, Person, VisitorCard
from gateway.rules.engine import Changes


def erased_subjects(ctx: CommandContext) -> list[str]:
    """Subjects whose personal data the command's writes erased."""
    out: list[str] = []
    for fact in ctx.puts:
        if isinstance(fact, VisitorCard) and fact.erased:
            out.append(f"credential {fact.number}")
        elif isinstance(fact, Person) and fact.first_name == ERASED:
            out.append(f"person {fact.id}")
    return out


class CommandLog:
    """Appends an entry for every command the core accepts or refuses."""

    def __call__(
        self, session: Session, core: Core, ctx: CommandContext | None, changes: Changes
    ) -> None:
        if ctx is None or ctx.command is None:
            return
        command = ctx.command
        fields, personal = split_command(command, ctx.command_json())
        data: dict[str, Any] = {
            "status": "refused" if ctx.refusal is not None else "ok",
            "source": ctx.source,
            "request_id": ctx.request_id,
            "command": fields,
        }
        if ctx.refusal is not None:
            data["error"] = ctx.refusal
        else:
            data["result"] = jsonable(ctx.result)
            data["revoked"] = sorted(
                (n for n, st in changes.credentials.items() if st is not None and st.revoked),
                key=lambda n: (len(n), n),
            )
            # What the command erased is erased from the log's earlier entries too, and this
            # entry records which (the verifier tells an erasure from tampering by it).
            erased = erased_subjects(ctx)
            seqs = audit_log.erase_personal(session, at=ctx.now, subjects=erased) if erased else []
            if seqs:
                data[audit_log.ERASED_ENTRIES] = audit_log.seq_ranges(seqs)
        audit_log.append_seq(
            session,
            at=ctx.now,
            actor=ctx.operator,
            action=command.name,
            subjects=command_subjects(command, ctx.subjects, ctx.command_json()),
            data=data,
            personal=personal,
        )


__all__ = ["CommandLog", "erased_subjects"]

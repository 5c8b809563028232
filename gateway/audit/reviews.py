"""Recording access reviews: the quarterly review of every card and its access, with the
credentials the reviewer marked for removal revoked in the same transaction.

The review is a command (:class:`RecordAccessReview`, action ``record_access_review``: an
administrator or an operator titled operations manager), so it goes through the core like any
other change: authorized, applied to the rules engine, logged. It is not offered over MQTT
(it is not in :data:`gateway.commands.model.COMMANDS`).

What "removed" does to each credential:

- a key or tag becomes ``returned`` (revoked at once; its holder must hand it in);
- a visitor card that is valid now ends now (its validity is cut at the current second, or
  one second after its start if it started within it; the holder's data is kept until the card
  is handed in, when ``lockgate cards return`` erases it);
- a visitor card that has already expired is left as it is (it opens nothing);
- a visitor card whose validity has not started yet is closed as returned and its holder's
  data erased (it never opened anything).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar

from pydantic import Field
from sqlalchemy import Row, insert, select
from sqlalchemy.orm import Session

from gateway.audit.fields import register_personal_fields
from gateway.auth.roles import RECORD_ACCESS_REVIEW
from gateway.commands import model as m
from gateway.commands.handlers import CommandContext, handles
from gateway.core import Core
from gateway.domain.errors import DomainError, IllegalTransition, NotFound
from gateway.domain.facts import (
    ERASED,
    TERMINAL_STATES,
    CredentialKind,
    CredentialState,
    VisitorCard,
)
from gateway.rules.engine import Changes
from gateway.rules.factset import FactSet
from gateway.store.tables import access_review


class RecordAccessReview(m.Command):
    """Record that the access review was done, revoking ``remove``."""

    name: ClassVar[str] = "access_review"
    action: ClassVar[str] = RECORD_ACCESS_REVIEW
    revokes: ClassVar[bool] = True
    summary: ClassVar[str] = (
        "Record the quarterly access review; the credentials marked for removal are revoked."
    )

    remove: Annotated[tuple[m.CredentialNumber, ...], Field(max_length=10000)] = ()
    note: Annotated[str, Field(max_length=2000)] = ""


register_personal_fields(RecordAccessReview, ("note",))


def reviewable(facts: FactSet) -> int:
    """How many credentials a review lists: every one not in a terminal state."""
    return sum(1 for c in facts.credentials.values() if c.state not in TERMINAL_STATES)


def _erase(card: VisitorCard, at: datetime) -> VisitorCard:
    return card.model_copy(
        update={
            "holder_name": ERASED,
            "company": ERASED,
            "mobile": ERASED,
            "erased": True,
            "returned_at": card.returned_at or at,
        }
    )


@handles(RecordAccessReview)
def _record(ctx: CommandContext, cmd: RecordAccessReview) -> None:
    facts = ctx.facts
    if len(set(cmd.remove)) != len(cmd.remove):
        raise DomainError("a credential is listed twice", field="remove")
    removed: list[str] = []
    ended: list[str] = []
    for i, number in enumerate(cmd.remove):
        cred = facts.credentials.get(number)
        if cred is None:
            raise NotFound(f"credential {number} is not registered", field=f"remove.{i}")
        if cred.terminal:
            raise IllegalTransition(
                f"{cred.kind.value} {number} is already {cred.state.value}", field=f"remove.{i}"
            )
        card = facts.visitor_cards.get(number)
        if cred.kind is CredentialKind.VISITOR_CARD and card is not None:
            # Devices keep whole seconds: end at the start of the current second (or, for a
            # card that started within it, one second after its start).
            end = ctx.now.replace(microsecond=0)
            if card.valid_until <= end:
                ended.append(number)
                continue
            if card.valid_from <= ctx.now:
                end = max(end, card.valid_from.replace(microsecond=0) + timedelta(seconds=1))
                ctx.put(card.model_copy(update={"valid_until": min(end, card.valid_until)}))
                ended.append(number)
                continue
            ctx.put(_erase(card, ctx.now))
        ctx.put(
            cred.model_copy(update={"state": CredentialState.RETURNED, "state_changed_at": ctx.now})
        )
        removed.append(number)
    ctx.subjects += [f"credential {n}" for n in cmd.remove]
    ctx.result.update(
        {
            "credentials_listed": reviewable(facts),
            "removed": list(cmd.remove),
            "returned": removed,
            "visitor_cards_ended": ended,
        }
    )


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    """A recorded access review."""

    id: int
    at: datetime
    reviewer: str
    credentials: int
    removed: tuple[str, ...]
    note: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "reviewer": self.reviewer,
            "credentials": self.credentials,
            "removed": list(self.removed),
            "note": self.note,
        }


class ReviewRecorder:
    """Core listener: stores the review row when a :class:`RecordAccessReview` is accepted."""

    def __call__(
        self, session: Session, core: Core, ctx: CommandContext | None, changes: Changes
    ) -> None:
        if ctx is None or ctx.refusal is not None:
            return
        cmd = ctx.command
        if not isinstance(cmd, RecordAccessReview):
            return
        session.connection().execute(
            insert(access_review).values(
                at=ctx.now,
                reviewer=ctx.operator,
                credentials=int(ctx.result.get("credentials_listed", 0)),
                removed=list(cmd.remove),
                note=cmd.note or None,
            )
        )


def _record_of(row: Row[Any]) -> ReviewRecord:
    return ReviewRecord(
        int(row.id),
        row.at,
        row.reviewer,
        int(row.credentials),
        tuple(row.removed),
        row.note,
    )


def last_review(session: Session) -> ReviewRecord | None:
    """The most recent access review, if any."""
    row = (
        session.connection()
        .execute(
            select(access_review).order_by(access_review.c.at.desc(), access_review.c.id.desc())
        )
        .first()
    )
    return None if row is None else _record_of(row)


def reviews(session: Session) -> list[ReviewRecord]:
    """Every recorded review, oldest first."""
    rows = session.connection().execute(
        select(access_review).order_by(access_review.c.at, access_review.c.id)
    )
    return [_record_of(r) for r in rows]


__all__ = [
    "RecordAccessReview",
    "ReviewRecord",
    "ReviewRecorder",
    "last_review",
    "reviewable",
    "reviews",
]

"""The access review as a command: the quarterly review of every card and its access, with
the credentials the reviewer marked for removal revoked in the same transaction.

The review goes through the core like any other change (authorized, applied to the rules
engine, logged); its action ``record_access_review`` belongs to an administrator or an
operator titled operations manager. It is not offered over MQTT (it is not in
:data:`gateway.commands.model.COMMANDS`); :mod:`gateway.reviews` keeps the record of each.

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

from datetime import datetime, timedelta
from typing import Annotated, ClassVar

from pydantic import Field

from gateway.commands import model as m
from gateway.commands.context import CommandContext
from gateway.domain.errors import DomainError, IllegalTransition, NotFound
from gateway.domain.facts import (
    ERASED,
    TERMINAL_STATES,
    CredentialKind,
    CredentialState,
    VisitorCard,
)
from gateway.rules.factset import FactSet


class RecordAccessReview(m.Command):
    """Record that the access review was done, revoking ``remove``."""

    name: ClassVar[str] = "access_review"
    action: ClassVar[str] = "record_access_review"
    revokes: ClassVar[bool] = True
    summary: ClassVar[str] = (
        "Record the quarterly access review; the credentials marked for removal are revoked."
    )

    remove: Annotated[tuple[m.CredentialNumber, ...], Field(max_length=10000)] = ()
    note: Annotated[str, Field(max_length=2000)] = ""


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


def record_access_review(ctx: CommandContext, cmd: RecordAccessReview) -> None:
    """Revoke what the review removes (see the module docstring) and say what it did."""
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


__all__ = ["RecordAccessReview", "record_access_review", "reviewable"]

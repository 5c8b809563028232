"""Lost-card charges: the NOK 400 a lost employee card costs its holder.

The command handlers say what a command costs (``fee_nok`` in the result, with
``billed_employment``); :class:`ChargeRecorder`, a core listener, turns that into a row of the
``charge`` table in the same transaction. Visitor cards are free (``fee_nok`` 0: no row). A
replayed request (same request id) is answered from the inbox and never charged twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from gateway.commands.context import CommandContext
from gateway.core import Core
from gateway.rules.engine import Changes
from gateway.store.tables import charge

LOST_REASON: Final = "lost"


@dataclass(frozen=True, slots=True)
class Charge:
    """One charge: the credential, the billed employment (``None`` if unknown), the amount,
    why, when, and who recorded it."""

    id: int
    at: datetime
    credential: str
    employment_id: str | None
    amount_nok: int
    reason: str
    operator: str
    request_id: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "credential": self.credential,
            "employment_id": self.employment_id,
            "amount_nok": self.amount_nok,
            "reason": self.reason,
            "operator": self.operator,
            "request_id": self.request_id,
        }


class ChargeRecorder:
    """Records a charge when an accepted command's result carries ``fee_nok > 0``."""

    def __call__(
        self, session: Session, core: Core, ctx: CommandContext | None, changes: Changes
    ) -> None:
        if ctx is None or ctx.command is None or ctx.refusal is not None:
            return
        fee = ctx.result.get("fee_nok", 0)
        if not isinstance(fee, int) or isinstance(fee, bool) or fee <= 0:
            return
        command = ctx.command
        number = (
            ctx.result.get("revoked")
            or getattr(command, "credential_number", None)
            or getattr(command, "number", None)
        )
        if not isinstance(number, str):
            raise ValueError(f"{command.name}: a fee without a credential number")
        billed = ctx.result.get("billed_employment")
        session.connection().execute(
            insert(charge).values(
                at=ctx.now,
                credential=number,
                employment_id=billed if isinstance(billed, str) else None,
                amount_nok=fee,
                reason=str(getattr(command, "outcome", None) or LOST_REASON),
                operator=ctx.operator,
                request_id=ctx.request_id,
            )
        )


def charges(
    session: Session, *, since: datetime | None = None, credential: str | None = None
) -> list[Charge]:
    """Charges, oldest first, optionally from ``since`` on or of one credential."""
    stmt = select(charge).order_by(charge.c.at, charge.c.id)
    if since is not None:
        stmt = stmt.where(charge.c.at >= since)
    if credential is not None:
        stmt = stmt.where(charge.c.credential == credential)
    return [
        Charge(
            int(r.id),
            r.at,
            r.credential,
            r.employment_id,
            r.amount_nok,
            r.reason,
            r.operator,
            r.request_id,
        )
        for r in session.connection().execute(stmt)
    ]


def prune(session: Session, before: datetime) -> list[int]:
    """Delete charges recorded before ``before``; return their ids."""
    ids = [
        int(r.id)
        for r in session.connection().execute(select(charge.c.id).where(charge.c.at < before))
    ]
    if ids:
        session.connection().execute(delete(charge).where(charge.c.id.in_(ids)))
    return ids


__all__ = ["LOST_REASON", "Charge", "ChargeRecorder", "charges", "prune"]

"""The record of every access review: when, by whom, how many credentials it listed and what
it removed, kept in the ``access_review`` table in the transaction of the review itself (the
review is the command :class:`~gateway.commands.review.RecordAccessReview`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select
from sqlalchemy.orm import Session

from gateway.commands.context import CommandContext
from gateway.commands.review import RecordAccessReview
from gateway.core import Core
from gateway.rules.engine import Changes
from gateway.store.tables import access_review


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


__all__ = ["ReviewRecord", "ReviewRecorder", "last_review", "reviews"]

"""Anchors: the head of the chain (seq, hash, at) kept outside the database.

Verification alone proves that no entry was altered, removed or reordered *inside* the chain,
but not that the newest entries were not cut off the end, or the whole log rewritten by someone
who can write the database. An anchor published elsewhere closes that gap: every anchored
``seq`` must still exist with the anchored hash.

An anchor file holds one JSON object per line (``{"seq", "hash", "at", "anchored_at"}``), newest
last; :func:`write_anchor` appends and syncs to disk. Keep the file where the database's users
cannot rewrite it (another host, append-only storage, a ticket, a mail). :class:`AnchorService`
appends an anchor periodically while the gateway runs and, given a publisher (the composition
root's, which queues it in the MQTT bridge's outbox), also publishes it as an ``audit_anchor``
event.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.audit import log as audit_log
from gateway.audit.chain import Head, instant
from gateway.audit.log import Problem
from gateway.domain.timeutil import utcnow
from gateway.runtime import Gateway, PeriodicService
from gateway.store.database import Database
from gateway.store.tables import audit_entry

log = logging.getLogger(__name__)

TRUNCATED: Final = "truncated"
ANCHOR_MISMATCH: Final = "anchor_mismatch"

Publisher = Callable[[Session, "Anchor"], object]
"""Announces an anchor inside the session's transaction (the MQTT bridge queues an
``audit_anchor`` event in its outbox)."""


class AnchorFileError(ValueError):
    """An anchor file that cannot be read; the message names the line and the reason."""


@dataclass(frozen=True, slots=True)
class Anchor:
    """One anchored head, and when it was anchored."""

    seq: int
    hash: str
    at: datetime
    anchored_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "at": instant(self.at),
            "anchored_at": instant(self.anchored_at),
        }


def write_anchor(path: Path, head: Head, *, at: datetime) -> Anchor:
    """Append an anchor of ``head`` to the file at ``path`` (created if missing) and sync it."""
    anchor = Anchor(head.seq, head.hash, head.at, at)
    line = json.dumps(anchor.as_json(), sort_keys=True) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return anchor


def read_anchors(path: Path) -> list[Anchor]:
    """Every anchor in the file, in file order."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AnchorFileError(f"{path}: cannot be read ({exc.strerror})") from None
    anchors: list[Anchor] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            seq = obj["seq"]
            digest = obj["hash"]
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
                raise ValueError("seq must be a positive whole number")
            if not isinstance(digest, str) or len(digest) != 64:
                raise ValueError("hash must be 64 hex characters")
            at = datetime.fromisoformat(obj["at"])
            anchored_at = datetime.fromisoformat(obj.get("anchored_at", obj["at"]))
            if at.tzinfo is None or anchored_at.tzinfo is None:
                raise ValueError("at and anchored_at must carry a time zone")
            anchors.append(Anchor(seq, digest, at, anchored_at))
        except (ValueError, KeyError, TypeError) as exc:
            reason = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise AnchorFileError(f"{path}: line {number}: {reason}") from None
    return anchors


def check_anchors(session: Session, anchors: list[Anchor]) -> Problem | None:
    """The first anchor the log no longer matches, as a problem; ``None`` if all match."""
    top = audit_log.head(session)
    for a in sorted(anchors, key=lambda x: x.seq):
        stored = (
            session.connection()
            .execute(select(audit_entry.c.hash).where(audit_entry.c.seq == a.seq))
            .scalar_one_or_none()
        )
        if stored is None:
            last = top.seq if top is not None else 0
            return Problem(
                a.seq,
                TRUNCATED,
                f"entry {a.seq}, anchored at {instant(a.anchored_at)}, is missing: the log ends "
                f"at entry {last} (entries were cut off its end)",
            )
        if stored != a.hash:
            return Problem(
                a.seq,
                ANCHOR_MISMATCH,
                f"entry {a.seq} does not match its anchor of {instant(a.anchored_at)}: the log "
                "was rewritten",
            )
    return None


class AnchorService(PeriodicService):
    """A gateway service that anchors the head every ``every_s`` seconds when it moved: to
    ``path`` (a JSON-lines file) and, when ``publish`` is given (see :data:`Publisher`), as an
    ``audit_anchor`` event through the outbox."""

    name = "audit-anchor"

    def __init__(
        self,
        *,
        every_s: float = 300.0,
        path: Path | None = None,
        publish: Publisher | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if every_s <= 0:
            raise ValueError("every_s: must be positive")
        super().__init__(every_s)
        self.every_s = every_s
        self.path = path
        self.publish = publish
        self.clock = clock
        self.last: Head | None = None

    def anchor_once(self, db: Database) -> Anchor | None:
        """Anchor the current head if it moved since the last anchor; return the anchor."""
        with db.session(readonly=True) as s:
            top = audit_log.head(s)
        if top is None or top == self.last:
            return None
        now = self.clock()
        anchor = Anchor(top.seq, top.hash, top.at, now)
        if self.path is not None:
            write_anchor(self.path, top, at=now)
        if self.publish is not None:
            with db.session() as s:
                self.publish(s, anchor)
        self.last = top
        log.info("audit log anchored at entry %d", top.seq)
        return anchor

    async def run_once(self, gateway: Gateway) -> None:
        await gateway.call(self.anchor_once, gateway.db)


__all__ = [
    "ANCHOR_MISMATCH",
    "TRUNCATED",
    "Anchor",
    "AnchorFileError",
    "AnchorService",
    "check_anchors",
    "read_anchors",
    "write_anchor",
]

"""The panel's event FIFO, kept in a local append-only file so no event is lost across a
restart before the gateway has stored and acknowledged it.

Each line of the file is one JSON object: an event
(``{"seq", "kind", "credential", "door", "at", "reason"}``; a denial's reason) or an
acknowledgement (``{"ack": N}``: events up to ``N`` are stored by the gateway and may go).
Sequence numbers only grow, across restarts too. A torn last line (power lost mid-append) is
ignored with a warning. When the file has grown well beyond what it still needs it is
rewritten atomically with only the unacknowledged events.

Events are added in memory on the event loop (cheap, in order) and written by :meth:`flush`,
which the driver runs in a worker thread; :meth:`after` serves both written and unwritten
events.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

from drivers.base import ControllerEvent, ControllerEventKind, DenyReason
from drivers.osdp.files import append_synced, write_atomic

log = logging.getLogger(__name__)


def _to_line(e: ControllerEvent) -> dict[str, Any]:
    return {
        "seq": e.sequence,
        "kind": e.kind.value,
        "credential": e.credential,
        "door": e.door,
        "at": e.at.isoformat(),
        "reason": e.reason.value if e.reason is not None else None,
    }


def _from_line(doc: dict[str, Any]) -> ControllerEvent:
    at = datetime.fromisoformat(doc["at"])
    if at.tzinfo is None:
        raise ValueError("at: no time zone")
    return ControllerEvent(
        sequence=int(doc["seq"]),
        kind=ControllerEventKind(doc["kind"]),
        credential=int(doc["credential"]),
        door=int(doc["door"]),
        at=at,
        reason=DenyReason(doc["reason"]) if doc.get("reason") else None,
    )


class EventJournal:
    """Events not yet acknowledged, in memory and in ``path``. Thread-safe."""

    def __init__(self, path: Path, *, capacity: int = 10000) -> None:
        self.path = path
        self.capacity = capacity
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._events: deque[ControllerEvent] = deque()
        self._unwritten: list[ControllerEvent] = []
        self._acked = 0
        self._last = 0
        self._lines = 0
        self.overflowed = False
        """True once unacknowledged events were dropped because the journal was full."""

    @classmethod
    def open(cls, path: Path, *, capacity: int = 10000) -> EventJournal:
        """Load ``path`` (a missing file is an empty journal)."""
        journal = cls(path, capacity=capacity)
        journal._load()
        return journal

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        lines = raw.split(b"\n")
        torn = lines.pop() if lines else b""
        if torn:
            log.warning(
                "event journal %s: ignoring a torn last line (%d bytes)", self.path, len(torn)
            )
        events: dict[int, ControllerEvent] = {}
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            self._lines += 1
            try:
                doc = json.loads(line)
                if "ack" in doc:
                    self._acked = max(self._acked, int(doc["ack"]))
                    continue
                event = _from_line(doc)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("event journal %s: line %d skipped: %s", self.path, number, exc)
                continue
            events[event.sequence] = event
        self._last = max([self._acked, *events])
        kept = sorted((e for s, e in events.items() if s > self._acked), key=lambda e: e.sequence)
        self._events.extend(kept[-self.capacity :])
        if len(kept) > self.capacity:
            self.overflowed = True

    @property
    def last_sequence(self) -> int:
        with self._lock:
            return self._last

    @property
    def pending(self) -> int:
        """Events not yet acknowledged."""
        with self._lock:
            return len(self._events)

    def add(
        self,
        kind: ControllerEventKind,
        *,
        credential: int = 0,
        door: int,
        at: datetime,
        reason: DenyReason | None = None,
    ) -> ControllerEvent:
        """Append an event in memory with the next sequence number; :meth:`flush` writes it."""
        with self._lock:
            self._last += 1
            event = ControllerEvent(self._last, kind, credential, door, at, reason)
            self._events.append(event)
            self._unwritten.append(event)
            if len(self._events) > self.capacity:
                dropped = self._events.popleft()
                if not self.overflowed:
                    log.warning(
                        "event journal %s: full (%d events); dropping the oldest (%d) until "
                        "the gateway acknowledges",
                        self.path,
                        self.capacity,
                        dropped.sequence,
                    )
                self.overflowed = True
        return event

    def flush(self) -> int:
        """Write the events added since the last flush and sync them; returns how many."""
        with self._flush_lock:
            with self._lock:
                batch, self._unwritten = self._unwritten, []
            if not batch:
                return 0
            data = "".join(json.dumps(_to_line(e)) + "\n" for e in batch).encode()
            try:
                append_synced(self.path, data)
            except BaseException:
                with self._lock:
                    self._unwritten[:0] = batch
                raise
            with self._lock:
                self._lines += len(batch)
            return len(batch)

    def after(self, sequence: int, limit: int) -> list[ControllerEvent]:
        """Unacknowledged events with a sequence greater than ``sequence``, oldest first."""
        with self._lock:
            out = [e for e in self._events if e.sequence > sequence]
        return out[:limit]

    def ack(self, up_to: int) -> None:
        """Drop events up to and including ``up_to`` and record it durably."""
        self.flush()
        with self._flush_lock:
            with self._lock:
                if up_to > self._last:
                    raise ValueError(
                        f"up_to_sequence: {up_to} is beyond the last event ({self._last})"
                    )
                if up_to <= self._acked:
                    return
                self._acked = up_to
                while self._events and self._events[0].sequence <= up_to:
                    self._events.popleft()
                self.overflowed = False
                compact = self._lines > 2 * self.capacity + 64
                keep = list(self._events)
            if compact:
                lines = [json.dumps({"ack": up_to})] + [json.dumps(_to_line(e)) for e in keep]
                write_atomic(self.path, ("\n".join(lines) + "\n").encode())
                newest = keep[-1].sequence if keep else up_to
                with self._lock:
                    self._lines = len(lines)
                    # The rewrite carries every kept event, written before or not.
                    self._unwritten = [e for e in self._unwritten if e.sequence > newest]
            else:
                append_synced(self.path, (json.dumps({"ack": up_to}) + "\n").encode())
                with self._lock:
                    self._lines += 1


__all__ = ["EventJournal"]

"""Desired documents larger than one MQTT message: the hub splits them into parts, the agent
puts the parts together again and accepts the document only once it has every part.

Every part is a :class:`SiteDesired` of the same site, revision and base, numbered ``part`` of
``parts``; together they hold the document's controllers in its order (revoking ones first).
A controller whose allow-list alone is too large is split across consecutive parts (its
entries in order, its schedules in the first of them); every piece carries the controller's
desired revision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gateway.bridge.sitepayloads import ControllerDoc, SiteDesired, dump

MARGIN = 512
"""Bytes left free in every part for what the size estimate does not count."""


class PartError(ValueError):
    """Parts that do not make one document; the message says why."""


def _pieces(cid: str, doc: ControllerDoc, budget: int) -> list[tuple[str, ControllerDoc, int]]:
    """``doc`` as it is, or cut into pieces of at most about ``budget`` bytes each."""
    size = len(doc.model_dump_json()) + len(cid) + 8
    if size <= budget or len(doc.entries) <= 1:
        return [(cid, doc, size)]
    count = math.ceil(size / budget)
    per = math.ceil(len(doc.entries) / count)
    out = []
    for i in range(0, len(doc.entries), per):
        piece = doc.model_copy(
            update={
                "entries": doc.entries[i : i + per],
                "schedules": doc.schedules if i == 0 else [],
            }
        )
        out.append((cid, piece, len(piece.model_dump_json()) + len(cid) + 8))
    return out


def _pack(doc: SiteDesired, budget: int) -> list[dict[str, ControllerDoc]]:
    """The controllers of ``doc``, in order, grouped into parts of about ``budget`` bytes."""
    groups: list[dict[str, ControllerDoc]] = [{}]
    used = 0
    for cid, cdoc in doc.controllers.items():
        for name, piece, size in _pieces(cid, cdoc, budget):
            if groups[-1] and (used + size > budget or name in groups[-1]):
                groups.append({})
                used = 0
            groups[-1][name] = piece
            used += size
    return groups


def split(doc: SiteDesired, limit: int) -> list[SiteDesired]:
    """``doc`` as one message if its wire form fits in ``limit`` bytes, else as parts that
    each fit (as far as one allow-list entry fits)."""
    return [part for part, _ in _split(doc, limit)]


def wire(doc: SiteDesired, limit: int) -> list[bytes]:
    """The wire forms of :func:`split` (each serialised once)."""
    return [raw for _, raw in _split(doc, limit)]


def _split(doc: SiteDesired, limit: int) -> list[tuple[SiteDesired, bytes]]:
    whole = dump(doc)
    if len(whole) <= limit:
        return [(doc, whole)]
    head = len(dump(doc.model_copy(update={"controllers": {}, "part": 99999, "parts": 99999})))
    budget = max(limit - head - MARGIN, 1024)
    while True:
        groups = _pack(doc, budget)
        parts = [
            doc.model_copy(update={"controllers": g, "part": i, "parts": len(groups)})
            for i, g in enumerate(groups, start=1)
        ]
        out = [(p, dump(p)) for p in parts]
        if budget <= 1024 or all(len(raw) <= limit for _, raw in out):
            return out
        budget = max(budget * 3 // 4, 1024)


def merge(parts: list[SiteDesired]) -> SiteDesired:
    """The document of ``parts`` (every part of one revision, in any order); raise
    :class:`PartError` when they do not make one."""
    ordered = sorted(parts, key=lambda p: p.part)
    first = ordered[0]
    if [p.part for p in ordered] != list(range(1, first.parts + 1)):
        raise PartError(f"parts: expected 1..{first.parts}, got {[p.part for p in ordered]}")
    controllers: dict[str, ControllerDoc] = {}
    for p in ordered:
        for cid, piece in p.controllers.items():
            held = controllers.get(cid)
            if held is None:
                controllers[cid] = piece
                continue
            if held.revision != piece.revision:
                raise PartError(
                    f"controllers.{cid}: revision {piece.revision!r} in part {p.part}, "
                    f"{held.revision!r} before"
                )
            controllers[cid] = held.model_copy(
                update={
                    "entries": [*held.entries, *piece.entries],
                    "schedules": [*held.schedules, *piece.schedules],
                    "revoking": held.revoking or piece.revoking,
                }
            )
    return first.model_copy(update={"controllers": controllers, "part": 1, "parts": 1})


@dataclass
class Assembly:
    """The parts received so far of one revision (the agent keeps only the newest)."""

    revision: int
    base: int | None
    parts: int
    received: dict[int, SiteDesired] = field(default_factory=dict)

    def add(self, part: SiteDesired) -> SiteDesired | None:
        """Add ``part`` (a repeated one replaces the earlier copy); the whole document once
        every part is here. Raise :class:`PartError` when it does not belong."""
        if part.base != self.base or part.parts != self.parts:
            raise PartError(
                f"part {part.part}/{part.parts} of revision {part.revision} (base {part.base}) "
                f"does not match the earlier parts ({self.parts} parts, base {self.base})"
            )
        self.received[part.part] = part
        if len(self.received) < self.parts:
            return None
        return merge(list(self.received.values()))


__all__ = ["Assembly", "PartError", "merge", "split", "wire"]

"""The wire form of the agent's outbox: events one message each, confirmations of the site
together in :class:`~gateway.bridge.sitepayloads.SiteConfirms` messages (one per send while
they fit in :data:`CONFIRMS_BYTES`), in outbox order (revocations first). Every report is
named by the store id it was queued under (``store``) and its sequence number (``seq``);
every message carries the lowest sequence number the outbox still holds (``oldest``)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from gateway.agent.local import Pending
from gateway.bridge.topics import TopicMap

CONFIRMS_BYTES = 262144
"""Most bytes of confirmations in one message (well below the broker's max_packet_size)."""


def dump_json(body: dict[str, object]) -> bytes:
    """The wire form of an outbox message."""
    return json.dumps(body, separators=(",", ":")).encode()


def wire_messages(
    site: str,
    topics: TopicMap,
    due: Sequence[Pending],
    limit: int = CONFIRMS_BYTES,
    *,
    store: str | None = None,
    oldest: int | None = None,
) -> list[tuple[str, bytes]]:
    """``(topic, payload)`` of the messages that carry ``due``, in its order, each with the
    lowest sequence number of the outbox ``oldest`` (when given). A report carries the store
    id it was queued under; ``store`` (the current one, when given) stands for it in a
    confirmations message, where a confirmation queued under another id names its own."""
    out: list[tuple[str, bytes]] = []
    confirms: list[bytes] = []
    size = 0
    origin: dict[str, object] = {"site": site}
    if store is not None:
        origin["store"] = store
    if oldest is not None:
        origin["oldest"] = oldest

    def flush() -> None:
        nonlocal size
        if confirms:
            head = dump_json(origin)[:-1]
            out.append(
                (
                    topics.site("site_confirm", site),
                    head + b',"confirms":[' + b",".join(confirms) + b"]}",
                )
            )
            confirms.clear()
            size = 0

    for p in due:
        if p.topic != "site_confirm":
            flush()
            body = origin | {"store": p.store, "seq": p.seq, **p.payload}
            out.append((topics.site(p.topic, site), dump_json(body)))
            continue
        own = {"store": p.store} if p.store != store else {}
        one = dump_json({"site": site, "seq": p.seq, **own, **p.payload})
        if confirms and size + len(one) > limit:
            flush()
        confirms.append(one)
        size += len(one) + 1
    flush()
    return out


__all__ = ["CONFIRMS_BYTES", "dump_json", "wire_messages"]

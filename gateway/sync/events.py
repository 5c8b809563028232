"""Where the sync engine reports what happened: device availability, confirmed state and
events (programming results, revocations confirmed, access granted/denied).

Sinks are called inside the transaction that recorded the fact, so a report is committed
exactly with it (the MQTT bridge writes outbox rows, the audit log appends entries). A sink
must not do I/O of its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from gateway.core import Core
from gateway.domain.facts import CredentialKind
from gateway.rules.hardware import controller_contributions
from gateway.store import sync as sync_store


class SyncSink(Protocol):
    """Receives the sync engine's reports inside its transactions."""

    def availability(self, session: Session, device_id: str, online: bool, reason: str) -> None:
        """A device went online or offline (``reason`` says why, for people)."""

    def credential_state(self, session: Session, core: Core, number: str) -> None:
        """What a device holds for credential ``number`` changed (confirmed or pending)."""

    def event(self, session: Session, kind: str, body: dict[str, Any]) -> None:
        """An event: ``key_programmed``, ``revocation_confirmed``, ``access_granted``, ..."""


class Sinks:
    """Fans every report out to several sinks."""

    def __init__(self, sinks: list[SyncSink] | None = None) -> None:
        self.sinks: list[SyncSink] = list(sinks or [])

    def availability(self, session: Session, device_id: str, online: bool, reason: str) -> None:
        for s in self.sinks:
            s.availability(session, device_id, online, reason)

    def credential_state(self, session: Session, core: Core, number: str) -> None:
        for s in self.sinks:
            s.credential_state(session, core, number)

    def event(self, session: Session, kind: str, body: dict[str, Any]) -> None:
        for s in self.sinks:
            s.event(session, kind, body)


def confirmed_revision(session: Session, core: Core, number: str) -> tuple[str, datetime] | None:
    """The desired revision of credential ``number`` that its devices confirmed, and when.

    A key is confirmed by the station that last wrote it; a tag or visitor card when every
    controller it is (or must be) on holds its desired allow-list. ``None`` while anything is
    pending."""
    state = core.engine.state(number)
    cred = core.engine.facts.credentials.get(number)
    if cred is None:
        return None
    if cred.kind is CredentialKind.KEY:
        k = sync_store.get_key(session, number)
        if k is None or k.credential_revision is None:
            return None
        return k.credential_revision, k.confirmed_at
    controllers = set(controller_contributions(state, core.engine.facts)) if state else set()
    confirmed = {c.controller_id: c for c in sync_store.all_controllers(session)}
    controllers |= {cid for cid, c in confirmed.items() if number in c.credentials}
    latest: datetime | None = None
    for cid in controllers:
        held = confirmed.get(cid)
        if held is None or held.revision != core.engine.controller_revision(cid):
            return None
        latest = held.confirmed_at if latest is None else max(latest, held.confirmed_at)
    if state is None or latest is None:
        return None
    return state.revision, latest

"""Where the sync engine reports what happened: device availability, confirmed state and
events (programming results, revocations confirmed, access granted/denied).

Sinks are called inside the transaction that recorded the fact, so a report is committed
exactly with it (the MQTT bridge writes outbox rows, the audit log appends entries). A sink
must not do I/O of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from gateway.core import Core
from gateway.domain.facts import CredentialKind
from gateway.rules.hardware import controller_contributions
from gateway.store import device_records as sync_store


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


def prefetch_confirmed(session: Session, core: Core, numbers: Sequence[str]) -> None:
    """Read the confirmed images of the keys among ``numbers`` in few statements, for the
    :func:`confirmed_revision` calls that follow in the transaction."""
    credentials = core.engine.facts.credentials
    sync_store.prefetch_keys(
        session,
        [
            n
            for n in numbers
            if (c := credentials.get(n)) is not None and c.kind is CredentialKind.KEY
        ],
    )


def confirmed_revision(session: Session, core: Core, number: str) -> tuple[str, datetime] | None:
    """The desired revision of credential ``number`` that its devices confirmed, and when;
    ``None`` while a device still has to change for it (its state is *pending*).

    - A **key** is confirmed by the station that last wrote and verified it: the credential
      revision of that write. A key out of reach stays pending, revoked or not, until it is
      next in a station (cylinder blacklists are confirmed separately).
    - A **tag or visitor card** is confirmed when every controller it concerns (those its
      desired state puts it on, and those whose last confirmed allow-list still has it) holds
      its desired allow-list, at the latest of those confirmations. One that no controller must
      hold and none holds (revoked and removed everywhere, or never placed) is confirmed once
      every controller of a space has confirmed an allow-list, at the latest of those; with no
      controllers at all, as soon as its state was computed."""
    state = core.engine.state(number)
    cred = core.engine.facts.credentials.get(number)
    if cred is None or state is None:
        return None
    if cred.kind is CredentialKind.KEY:
        k = sync_store.get_key(session, number)
        if k is None or k.credential_revision is None:
            return None
        return k.credential_revision, k.confirmed_at
    confirmed = {c.controller_id: c for c in sync_store.all_controllers(session)}
    concerned = set(controller_contributions(state, core.engine.facts))
    concerned |= {cid for cid, c in confirmed.items() if number in c.credentials}
    if concerned:
        for cid in concerned:
            held = confirmed.get(cid)
            if held is None or held.revision != core.engine.controller_revision(cid):
                return None
        return state.revision, max(confirmed[cid].confirmed_at for cid in concerned)
    known = core.engine.controller_ids()
    if any(cid not in confirmed for cid in known):
        return None  # a controller never confirmed: whether it holds the card is unknown
    if not confirmed:
        return state.revision, state.computed_at
    return state.revision, max(c.confirmed_at for c in confirmed.values())

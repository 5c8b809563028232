"""The planner: turns changes of desired state into persisted sync jobs, revocations first.

It runs as a listener of the core, inside the transaction that changed the desired state, so
a job exists exactly when the change is committed and a restart loses none. A job names the
target (a key or a controller) and the desired revision; the device workers finish it once
the device confirmed that revision.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.commands.context import CommandContext
from gateway.core import Core
from gateway.domain.facts import CredentialKind
from gateway.rules.engine import Changes
from gateway.rules.hardware import KeyExposure, granted_cylinders
from gateway.store import device_records as sync_store

KEY = "key"
CONTROLLER = "controller"


def load_exposures(session: Session, core: Core) -> None:
    """Core loader: give the engine what every key was last confirmed to hold."""
    for k in sync_store.all_keys(session):
        core.engine.set_exposure(KeyExposure(k.serial, frozenset(k.cylinders), k.lapses_at))


def plan(session: Session, core: Core, ctx: CommandContext | None, changes: Changes) -> None:
    """Core listener: queue a job for every key and controller whose desired state changed."""
    if not changes:
        return
    now = core.clock()
    engine = core.engine
    revoking = False
    for number, state in changes.credentials.items():
        if state is None or not state.enabled:
            revoking = True
        if state is not None and state.kind is not CredentialKind.KEY:
            continue
        confirmed = sync_store.get_key(session, number)
        if state is None:
            if confirmed is not None and confirmed.enabled:
                sync_store.put_job(
                    session, KEY, number, "removed", sync_store.REVOCATION, now, deferred=True
                )
            continue
        if confirmed is not None and confirmed.credential_revision == state.revision:
            sync_store.drop_job(session, KEY, number, deferred=True)
            continue
        if not state.enabled and (confirmed is None or not confirmed.enabled):
            # an inactive key that holds nothing: nothing to take away
            sync_store.drop_job(session, KEY, number, deferred=True)
            continue
        shrinks = confirmed is not None and bool(
            set(confirmed.cylinders) - granted_cylinders(state, engine.facts)
        )
        priority = sync_store.REVOCATION if (not state.enabled or shrinks) else sync_store.UPDATE
        sync_store.put_job(session, KEY, number, state.revision, priority, now, deferred=True)
    for cid in sorted(changes.controllers):
        desired_revision = engine.controller_revision(cid)
        confirmed_controller = sync_store.get_controller(session, cid)
        if confirmed_controller is not None and confirmed_controller.revision == desired_revision:
            sync_store.drop_job(session, CONTROLLER, cid, deferred=True)
            continue
        priority = sync_store.REVOCATION if revoking else sync_store.UPDATE
        sync_store.put_job(
            session, CONTROLLER, cid, desired_revision, priority, now, deferred=True
        )

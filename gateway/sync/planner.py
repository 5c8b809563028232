"""The planner: turns changes of desired state into persisted sync jobs, revocations first.

It runs as a listener of the core, inside the transaction that changed the desired state, so
a job exists exactly when the change is committed and a restart loses none. A job names the
target (a key or a controller) and the desired revision; the device workers finish it once
the device confirmed that revision.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from gateway.commands.context import CommandContext
from gateway.core import Core
from gateway.domain.facts import CredentialKind
from gateway.rules.engine import Changes
from gateway.rules.evaluate import DesiredCredential
from gateway.rules.hardware import KeyExposure, granted_cylinders
from gateway.store import device_records as sync_store

KEY = "key"
CONTROLLER = "controller"


def load_exposures(session: Session, core: Core) -> None:
    """Core loader: give the engine what every key was last confirmed to hold."""
    for k in sync_store.all_keys(session):
        core.engine.set_exposure(KeyExposure(k.serial, frozenset(k.cylinders), k.lapses_at))


_PLANS = "lockgate.planner.pending"

_KeyChange = tuple[str, DesiredCredential | None, frozenset[str]]
_Plan = tuple[datetime, bool, list[_KeyChange], list[tuple[str, str]]]


def plan(session: Session, core: Core, ctx: CommandContext | None, changes: Changes) -> None:
    """Core listener: queue a job for every key and controller whose desired state changed.

    What the change asks for is taken now (the states, the cylinders they grant, the
    controllers' desired revisions); comparing it with what the devices confirmed waits for
    the core to write the transaction (:meth:`Core.at_flush`), so that the confirmed images
    of all the keys a batch of commands changed are read in one statement. Nothing of this
    module reads jobs or key images in between, and no command changes them."""
    if not changes:
        return
    engine = core.engine
    revoking = False
    keys: list[_KeyChange] = []
    for number, state in changes.credentials.items():
        if state is None or not state.enabled:
            revoking = True
        if state is not None and state.kind is not CredentialKind.KEY:
            continue
        granted = (
            frozenset(granted_cylinders(state, engine.facts))
            if state is not None and state.enabled
            else frozenset()
        )
        keys.append((number, state, granted))
    controllers = [(cid, engine.controller_revision(cid)) for cid in sorted(changes.controllers)]
    pending: list[_Plan] | None = session.info.get(_PLANS)
    if pending is None:
        pending = session.info[_PLANS] = []
        core.at_flush(session, _write_plans)
    pending.append((core.clock(), revoking, keys, controllers))


def _write_plans(session: Session) -> None:
    plans: list[_Plan] = session.info.pop(_PLANS, [])
    sync_store.prefetch_keys(session, (number for _, _, keys, _ in plans for number, _, _ in keys))
    for now, revoking, keys, controllers in plans:
        for number, state, granted in keys:
            _plan_key(session, now, number, state, granted)
        for cid, desired_revision in controllers:
            confirmed_controller = sync_store.get_controller(session, cid)
            if (
                confirmed_controller is not None
                and confirmed_controller.revision == desired_revision
            ):
                sync_store.drop_job(session, CONTROLLER, cid, deferred=True)
                continue
            priority = sync_store.REVOCATION if revoking else sync_store.UPDATE
            sync_store.put_job(
                session, CONTROLLER, cid, desired_revision, priority, now, deferred=True
            )


def _plan_key(
    session: Session,
    now: datetime,
    number: str,
    state: DesiredCredential | None,
    granted: frozenset[str],
) -> None:
    confirmed = sync_store.get_key(session, number)
    if state is None:
        if confirmed is not None and confirmed.enabled:
            sync_store.put_job(
                session, KEY, number, "removed", sync_store.REVOCATION, now, deferred=True
            )
        return
    if confirmed is not None and confirmed.credential_revision == state.revision:
        sync_store.drop_job(session, KEY, number, deferred=True)
        return
    if not state.enabled and (confirmed is None or not confirmed.enabled):
        # an inactive key that holds nothing: nothing to take away
        sync_store.drop_job(session, KEY, number, deferred=True)
        return
    shrinks = confirmed is not None and bool(set(confirmed.cylinders) - granted)
    priority = sync_store.REVOCATION if (not state.enabled or shrinks) else sync_store.UPDATE
    sync_store.put_job(session, KEY, number, state.revision, priority, now, deferred=True)

"""After any sequence of injected faults, once the faults stop, every device converges to its
desired state and the store's confirmed state equals what the device holds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.commands import model as m
from gateway.domain import DEFAULT_TIMEZONE
from gateway.store import device_records as sync_store
from gateway.sync.images import allow_list
from tests import sample
from tests.gateway.sync.site import RunningSite, running_site

CTRL = sample.CONTROLLER
DESK = "desk-1"
KEYS = [sample.KEY_ANNA, sample.KEY_BJORN_MAIN, sample.KEY_CECILIA, sample.KEY_DAVID]
CARDS = ["ID06AN0001", "ID06BK0001", "ID06CE0001"]

station_faults = st.sampled_from(
    [
        ("corrupt", {"count": 2}),
        ("drop", {"count": 2}),
        ("slow", {"delay_s": 0.05}),
        ("pull_key", {"after_chunks": 0}),
    ]
)
controller_faults = st.sampled_from(
    [
        ("delay", {"seconds": 0.05}),
        ("drop", {}),
        ("restart", {}),
        ("reject_commits", {}),
        ("corrupt_commits", {}),
    ]
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("station_fault"), station_faults),
        st.tuples(st.just("controller_fault"), controller_faults),
        st.tuples(st.just("block"), st.sampled_from(CARDS)),
        st.tuples(st.just("unblock"), st.sampled_from(CARDS)),
        st.tuples(st.just("insert"), st.sampled_from(KEYS)),
    ),
    min_size=1,
    max_size=6,
)


async def visit(run: RunningSite, serial: str, within: float = 5.0) -> None:
    worker = run.sync.stations[DESK]
    before = len(worker.visits)
    run.site.insert(DESK, serial)
    deadline = asyncio.get_running_loop().time() + within
    while len(worker.visits) == before and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    device = run.site.stations[DESK].device
    if device.key is not None:
        run.site.remove(DESK)


async def apply(run: RunningSite, step: tuple[str, Any]) -> None:
    kind, arg = step
    if kind == "station_fault":
        run.site.stations[DESK].faults.set(arg[0], **arg[1])
    elif kind == "controller_fault":
        await run.site.controllers[CTRL].fault(arg[0], **arg[1])
    elif kind == "block":
        await run.submit(m.BlockId06(card_number=arg))
    elif kind == "unblock":
        await run.submit(m.UnblockId06(card_number=arg))
    else:
        await visit(run, arg, within=2.0)


async def converged(run: RunningSite) -> None:
    """Clear the faults, give every key one clean visit and check devices against the store."""
    run.site.stations[DESK].faults.clear()
    await run.site.controllers[CTRL].fault("clear")
    worker = run.sync.controllers[CTRL]
    desired = run.core.engine.controller(CTRL)
    memory = run.site.controllers[CTRL].memory

    def controller_done() -> bool:
        with run.core.db.session() as s:
            confirmed = sync_store.get_controller(s, CTRL)
        return (
            confirmed is not None
            and confirmed.revision == desired.revision
            and confirmed.checksum == memory.active_checksum
        )

    worker.wake()
    await run.until(controller_done, 15.0, "the controller to converge")
    entries, _ = allow_list(run.core.engine.controller(CTRL))
    assert sorted(memory.active_entries, key=repr) == sorted(entries, key=repr)
    for serial in KEYS:
        await visit(run, serial)
        key = run.site.world.registry.get(serial)
        with run.core.db.session() as s:
            confirmed = sync_store.get_key(s, serial)
            job = sync_store.get_job(s, "key", serial)
        state = run.core.engine.state(serial)
        assert state is not None
        if confirmed is not None:
            assert confirmed.revision == key.image.revision, serial
            assert confirmed.credential_revision == state.revision, serial
        assert job is None, (serial, job)


@pytest.mark.slow
@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=steps)
def test_devices_converge_after_faults(plan: list[tuple[str, Any]], tmp_path_factory: Any) -> None:
    today = datetime.now(UTC).astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date()
    url = f"sqlite:///{tmp_path_factory.mktemp('conv')}/lockgate.db"

    async def scenario() -> None:
        async with running_site(url, today) as run:
            await run.until(lambda: run.sync.controllers[CTRL].writes >= 1, 10.0, "first sync")
            for step in plan:
                await apply(run, step)
                await asyncio.sleep(0.05)
            await converged(run)

    asyncio.run(scenario())

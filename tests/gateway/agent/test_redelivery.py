"""A report of a site's agent is applied once however often it is delivered: the hub records
it by (site, the store id it was queued under, outbox sequence number) in the transaction that
applies it, so a redelivery after a restart of the core (the acknowledgement lost with it)
reports nothing again. A new state file, its sequence numbers starting again at 1, is no
repeat, nor is a new report of a state file restored from a backup; the record forgets what the
agent no longer holds, the store id's floor still telling it."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
from sqlalchemy import select

from gateway.agent import Agent
from gateway.agent.local import EVENT, AgentStore
from gateway.demo.broker import PrivateMosquitto
from gateway.store.tables import site_report
from tests.gateway.agent.facts import tag
from tests.gateway.agent.harness import (
    RunningCore,
    agent_settings,
    core_gateway,
    running_core,
    state_file,
    until,
)


def gate(site: str) -> str:
    """The site's controller (a name of its own: other tests' agents leave their retained
    states, naming their controllers, on the session's broker)."""
    return f"gate-{site}"


STORE = "0f" * 16
NEW_STORE = "a1" * 16


class FakeAgent:
    """An agent's side of the site topics, by hand: publishes reports and waits for their
    acknowledgements."""

    def __init__(self, client: aiomqtt.Client, site: str) -> None:
        self.client = client
        self.site = site
        self.base = f"lockgate/v1/site/{site}"

    async def deliver(self, topic: str, body: dict[str, Any]) -> None:
        """Publish ``body`` on the site's ``topic`` and wait until the core acknowledges it."""
        seq = body["seq"] if "seq" in body else body["confirms"][-1]["seq"]
        await self.client.publish(f"{self.base}/{topic}", json.dumps(body), qos=1)
        async with asyncio.timeout(10):
            async for msg in self.client.messages:
                assert isinstance(msg.payload, bytes)
                if seq in json.loads(msg.payload)["seqs"]:
                    return


@asynccontextmanager
async def fake_agent(broker: PrivateMosquitto, site: str) -> AsyncIterator[FakeAgent]:
    """A fake agent of ``site`` that names its controller :func:`gate` in its retained state."""
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"fake-{site}") as c:
        agent = FakeAgent(c, site)
        await c.subscribe(f"{agent.base}/ack", qos=1)
        state = {
            "site": site,
            "online": True,
            "reason": "connected",
            "controllers": {gate(site): None},
            "at": datetime.now(UTC).isoformat(),
        }
        await c.publish(f"{agent.base}/state", json.dumps(state), qos=1, retain=True)
        try:
            yield agent
        finally:
            await c.publish(f"{agent.base}/state", b"", qos=1, retain=True)


def lost(site: str, seq: int, first: int, store: str | None = STORE) -> dict[str, Any]:
    """A lost-events report of the gate (events ``first``..``first + 9``)."""
    body: dict[str, Any] = {
        "site": site,
        "seq": seq,
        "kind": "events_lost",
        "controller": gate(site),
        "generation": 1,
        "sequence": first,
        "last": first + 9,
        "reason": "overwritten",
        "at": datetime.now(UTC).isoformat(),
    }
    return body | ({"store": store, "oldest": seq} if store else {})


def failed(site: str, seq: int, store: str, at: str) -> dict[str, Any]:
    """A failed write of a key with no pending job at a station of the site."""
    return {
        "site": site,
        "seq": seq,
        "store": store,
        "oldest": seq,
        "station": f"wall-{site}",
        "serial": "100000009",
        "outcome": "pulled",
        "error": "key removed during the write",
        "at": at,
    }


def _events(run: RunningCore, kind: str) -> list[dict[str, Any]]:
    return [b for k, b in run.sink.events if k == kind]


async def _restarted(
    run: RunningCore, db_url: str, broker: PrivateMosquitto, site: str, stack: AsyncExitStack
) -> None:
    """Stop the core and start a new one (a new hub, a new sink) on the same store (stopped
    with ``stack``)."""
    await run.gateway.stop()
    run.gateway, run.hub, run.sink = core_gateway(db_url, broker)
    await run.gateway.start()
    stack.push_async_callback(run.gateway.stop)
    hub = run.hub
    await until(lambda: site in hub.sites and hub.sites[site].controllers, what="the hub back")


async def test_lost_events_delivered_again_after_a_core_restart_are_reported_once(
    db_url: str, broker: PrivateMosquitto
) -> None:
    site = "redeliver-lost"
    async with (
        running_core(db_url, broker, [gate(site)]) as run,
        fake_agent(broker, site) as agent,
        AsyncExitStack() as stack,
    ):
        await until(lambda: site in run.hub.sites and run.hub.sites[site].controllers)
        report = lost(site, 7, 100)
        await agent.deliver("events", report)
        await agent.deliver("events", report)  # the acknowledgement was late: sent again
        assert [(b["first"], b["last"]) for b in _events(run, "controller_events_lost")] == [
            (100, 109)
        ]

        # the core restarts after the commit, before the agent heard the acknowledgement
        await _restarted(run, db_url, broker, site, stack)
        await agent.deliver("events", report)
        assert _events(run, "controller_events_lost") == []

        # a new state file: its numbers start again, its reports are no repeats
        await agent.deliver("events", lost(site, 7, 200, store=NEW_STORE))
        assert [(b["first"], b["last"]) for b in _events(run, "controller_events_lost")] == [
            (200, 209)
        ]


async def test_a_failed_key_write_delivered_again_after_a_core_restart_is_reported_once(
    db_url: str, broker: PrivateMosquitto
) -> None:
    """The key has no pending job (nothing in the store tells the failure was recorded)."""
    site = "redeliver-key"
    at = datetime.now(UTC).isoformat()
    async with (
        running_core(db_url, broker, [gate(site)]) as run,
        fake_agent(broker, site) as agent,
        AsyncExitStack() as stack,
    ):
        await until(lambda: site in run.hub.sites, what="the hub heard the agent")
        await agent.deliver("key_failed", failed(site, 3, STORE, at))
        assert len(_events(run, "key_programming_failed")) == 1

        await _restarted(run, db_url, broker, site, stack)
        await agent.deliver("key_failed", failed(site, 3, STORE, at))
        assert _events(run, "key_programming_failed") == []
        # another write failed, reported by an agent with a new state file under seq 3 again
        later = datetime.now(UTC).isoformat()
        await agent.deliver("key_failed", failed(site, 3, NEW_STORE, later))
        assert len(_events(run, "key_programming_failed")) == 1


async def test_a_report_without_a_store_id_is_still_applied(
    sqlite_url: str, broker: PrivateMosquitto
) -> None:
    """An agent before store ids: applied, and a repeat recognised while the hub runs."""
    site = "redeliver-old"
    async with (
        running_core(sqlite_url, broker, [gate(site)]) as run,
        fake_agent(broker, site) as agent,
    ):
        await until(lambda: site in run.hub.sites and run.hub.sites[site].controllers)
        await agent.deliver("events", lost(site, 5, 300, store=None))
        await agent.deliver("events", lost(site, 5, 300, store=None))
        assert len(_events(run, "controller_events_lost")) == 1


def confirmation(site: str, seq: int, revision: str, credentials: list[str]) -> dict[str, Any]:
    """The gate holds ``credentials`` at ``revision`` (a confirmation message of one)."""
    one = {
        "site": site,
        "seq": seq,
        "controller": gate(site),
        "revision": revision,
        "checksum": 7,
        "generation": 1,
        "credentials": credentials,
        "entries": len(credentials),
        "ms": 12.0,
        "at": datetime.now(UTC).isoformat(),
    }
    return {"site": site, "store": STORE, "oldest": seq, "confirms": [one]}


async def test_a_repeated_confirmation_leaves_what_changed_to_the_next_one(
    sqlite_url: str, broker: PrivateMosquitto
) -> None:
    """A change since the gate's last confirmation is reported with the next confirmation
    applied, not used up by a late repeat of an earlier one that changes nothing."""
    site = "redeliver-touched"
    held = [tag(i) for i in range(4)]
    async with (
        running_core(sqlite_url, broker, [gate(site)]) as run,
        fake_agent(broker, site) as agent,
    ):
        hub = run.hub
        await until(lambda: site in hub.sites and hub.sites[site].controllers)
        await agent.deliver("confirm", confirmation(site, 1, "r1", held))
        await run.block(0)  # person 0's tag is revoked: the gate must change for it
        await until(
            lambda: tag(0) in hub.sites[site].touched.get(gate(site), set()),
            what="the hub saw the change",
        )
        run.sink.states.clear()
        await agent.deliver("confirm", confirmation(site, 1, "r1", held))  # late, again
        assert run.sink.states == []
        # the card is still on the gate's next list (as after a change that keeps it there,
        # a new validity say): only the change remembered since the last confirmation tells
        # that its state is now confirmed
        await agent.deliver("confirm", confirmation(site, 2, "r2", held))
        assert tag(0) in run.sink.states


def _seqs(run: RunningCore, site: str, store: str) -> set[int]:
    with run.core.db.session(readonly=True) as s:
        rows = s.execute(
            select(site_report.c.seq).where(
                site_report.c.site == site, site_report.c.store == store
            )
        )
        return {int(r[0]) for r in rows}


async def test_an_agent_with_a_new_state_file_is_not_taken_for_repeats(
    sqlite_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    """A real agent: its reports are recorded under its store id; with a new file it
    starts again at 1 under a new id, and its confirmations reach the core; what its outbox
    no longer holds is forgotten."""
    site = "redeliver-real"
    controller = gate(site)
    async with running_core(sqlite_url, broker, [controller]) as run:
        run.hub.applied.forget_every_s = 0.0
        settings = agent_settings(broker, {controller: run.simulators[controller].driver_options()})
        async with Agent(settings, site, state_file(tmp_path, "old"), resend_s=1.0) as old:
            await until(lambda: run.all_confirmed([controller]), what="the first sync")
            await until(lambda: old.store.waiting() == 0, what="all acknowledged")
            first = old.store.store_id
            applied = await run.gateway.call(_seqs, run, site, first)
            assert applied
        await run.block(0)  # while the site's agent is away
        async with Agent(settings, site, state_file(tmp_path, "new"), resend_s=1.0) as new:
            assert new.store.store_id != first
            await until(
                lambda: run.all_confirmed([controller]), what="the new file's confirmations"
            )
            await until(lambda: new.store.waiting() == 0, what="all acknowledged")
            again = await run.gateway.call(_seqs, run, site, new.store.store_id)
            assert again & applied  # the same numbers, not taken for repeats
            # one more report: its message says the agent holds nothing below it any more
            await run.block(1)
            await until(lambda: run.all_confirmed([controller]), what="in sync again")
            await until(lambda: new.store.waiting() == 0, what="all acknowledged again")
            kept = await run.gateway.call(_seqs, run, site, new.store.store_id)
            assert kept and not kept & again


def _queue_lost(agent: Agent, first: int) -> int:
    """Queue at the agent a report of the gate's events ``first``..``first + 9`` lost, as the
    agent does; returns its sequence number."""
    with agent.store.transaction() as c:
        AgentStore.enqueue(c, EVENT, "site_events", _lost_body(gate(agent.site), first), None)
        return int(c.execute("select seq from sqlite_sequence where name = 'outbox'").fetchone()[0])


def _back_up(source: Path, target: Path) -> None:
    """Back the agent's state file up as it is now (what is committed in it; the agent may be
    running)."""
    target.unlink(missing_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _restore(backup: Path, state: Path) -> None:
    """Put the backup in place of the stopped agent's state file."""
    for extra in ("-wal", "-shm"):
        Path(f"{state}{extra}").unlink(missing_ok=True)
    shutil.copyfile(backup, state)


async def test_a_state_file_restored_from_a_backup_loses_no_report_and_repeats_none(
    db_url: str, broker: PrivateMosquitto, tmp_path: Path
) -> None:
    """The agent's state file is backed up while it holds a report the core has not applied
    yet; the agent goes on: that report, another and a confirmation are applied. The file is
    restored from the backup: its sequence numbers come again for new reports, which are all
    applied (none taken for one applied from the lost timeline), and the report it still
    holds, applied before, is not applied again, though the hub forgot its record meanwhile
    (the store id's floor tells it)."""
    site = "redeliver-restore"
    controller = gate(site)
    state = Path(state_file(tmp_path, site))
    backup = tmp_path / "backup.db"
    async with running_core(db_url, broker, [controller]) as run, AsyncExitStack() as stack:
        run.hub.applied.forget_every_s = 0.0  # the records below the floor forgotten at once
        settings = agent_settings(broker, {controller: run.simulators[controller].driver_options()})
        async with Agent(settings, site, str(state), resend_s=1.0) as agent:
            await until(lambda: run.all_confirmed([controller]), what="the first sync")
            await until(lambda: agent.store.waiting() == 0, what="all acknowledged")
            await run.gateway.stop()  # the core away: the report waits in the outbox
            _queue_lost(agent, 100)
            _back_up(state, backup)
            run.gateway, run.hub, run.sink = core_gateway(db_url, broker)
            run.hub.applied.forget_every_s = 0.0
            await run.gateway.start()
            stack.push_async_callback(run.gateway.stop)
            await until(lambda: len(_events(run, "controller_events_lost")) == 1, what="100")
            _queue_lost(agent, 200)
            await until(lambda: len(_events(run, "controller_events_lost")) == 2, what="200")
            await run.block(0)
            await until(lambda: run.all_confirmed([controller]), what="the block confirmed")
            await until(lambda: agent.store.waiting() == 0, what="all acknowledged")
            with agent.store.transaction() as c:
                highest = c.execute("select seq from sqlite_sequence where name = 'outbox'")
                last = int(highest.fetchone()[0])

        # the backup put back: the lost timeline's numbers come again
        _restore(backup, state)
        async with Agent(settings, site, str(state), resend_s=1.0) as agent:
            seq = _queue_lost(agent, 300)
            assert seq <= last  # a number the hub applied another report under
            await until(
                lambda: len(_events(run, "controller_events_lost")) == 3, what="300 applied"
            )
            await run.block(1)
            await until(lambda: run.all_confirmed([controller]), what="the confirmation")
            await until(lambda: agent.store.waiting() == 0, what="all acknowledged again")
        assert [(b["first"], b["last"]) for b in _events(run, "controller_events_lost")] == [
            (100, 109),
            (200, 209),
            (300, 309),
        ]


def _lost_body(controller: str, first: int) -> dict[str, Any]:
    return {
        "kind": "events_lost",
        "controller": controller,
        "generation": 1,
        "sequence": first,
        "last": first + 9,
        "reason": "overwritten",
        "at": datetime.now(UTC).isoformat(),
    }

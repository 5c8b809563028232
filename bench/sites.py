"""Benchmark: revocation latency across many sites served by edge agents.

N sites x 5 simulated Modbus door controllers. The core (this process: store, rules, planner,
the site hub) runs on SQLite; every site's agent is a ``lockgate agent`` process; the
controllers are simulated in one more process; all talk through a private Mosquitto. People
are granted doors on every controller. Then ID06 cards are blocked one at a time, and each is
timed from the block accepted by the core (its transaction committed) until every controller
of every site has confirmed (written and verified by the agent, applied by the core) an
allow-list without the card's tag. Afterwards the simulators are asked whether any controller
still holds a revoked tag.

Idle cost: with everything synced, the core's CPU (this process) and the site hub's MQTT
messages per second over ``--idle-s`` seconds, per site.

Prints one JSON object as its last line:

``sites``, ``controllers``, ``revocations``
``revocation_p50_ms`` / ``revocation_p99_ms`` / ``revocation_max_ms``   (target p99 <= 1000)
``first_controller_p50_ms``   the same until the first controller confirmed (the rest is
                              the spread over all controllers)
``first_sync_s``              from the agents' start to every controller confirmed
``idle_core_cpu_pct``         core process CPU at idle (percent of one core)
``idle_core_cpu_pct_per_site``
``idle_mqtt_msgs_per_s``      messages the hub sent and received per second at idle
``mqtt_msgs_up_per_revocation`` messages the hub received per revocation (agents' states,
                              confirmations: one message per site when they go together)
``core_ms_per_confirmation`` core time to apply one controller's confirmation (its
                              transaction on the core thread, queueing included)
``cpu_ms_per_revocation_core|agents|simulators``
                              CPU time per revocation of the core (this process, the 0.2 s
                              pauses between revocations included), of all agents together and
                              of the simulator process
``still_holding``             controllers that still hold a revoked tag (must be 0)
``load_average_1m``           the machine's load at the end (the bench shares its cores)

Usage: ``python bench/sites.py [--sites 20] [--revocations 20] [--idle-s 10]
[--confirm-wait-s 0]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONTROLLERS_PER_SITE = 5


def percentile(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    k = max(0, math.ceil(pct / 100 * len(ordered)) - 1)
    return ordered[k]


# --------------------------------------------------------------------------- simulator host


async def serve_simulators(ids: list[str]) -> None:
    """Child mode: run one simulated controller per id; print their driver options as one
    JSON line; then answer ``check <tags...>`` lines with the controllers holding any of the
    tags, until stdin closes."""
    from simulators.controller import ControllerMemory, ControllerServer, ControllerSimulator

    sims: dict[str, ControllerSimulator] = {}
    for cid in ids:
        memory = ControllerMemory(controller_id=cid, doors=4, capacity=2000)
        sims[cid] = ControllerSimulator(
            ControllerServer(memory, transport="tcp"), control_port=None
        )
        await sims[cid].start()
    print(json.dumps({cid: s.driver_options() for cid, s in sims.items()}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := (await reader.readline()).decode().strip():
            tags = {int(t) for t in line.split()[1:]}
            holding = [
                cid
                for cid, s in sims.items()
                if any(e.credential in tags for e in s.memory.active_entries)
            ]
            print(json.dumps(holding), flush=True)
    finally:
        for s in sims.values():
            await s.close()


# --------------------------------------------------------------------------- the bench


def _start_simulators(ids: list[str]) -> tuple[subprocess.Popen[str], dict[str, dict[str, Any]]]:
    """The simulator host process and the driver options of every controller."""
    sim = subprocess.Popen(
        [sys.executable, __file__, "--simulate", ",".join(ids)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sim.stdout is not None
    return sim, json.loads(sim.stdout.readline())


class _Confirmations:
    """A sync sink that tells the bench when a tag's revocation is confirmed everywhere."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.devices: dict[str, set[str]] = {}
        self.waiting: dict[str, tuple[int, asyncio.Event]] = {}
        self.first: dict[str, float] = {}
        """Tag -> when its first controller's confirmation was applied (perf_counter)."""

    def availability(self, session: object, device_id: str, online: bool, reason: str) -> None:
        pass

    def credential_state(self, session: object, core: object, number: str) -> None:
        pass

    def event(self, session: object, kind: str, body: dict[str, Any]) -> None:
        if kind != "revocation_confirmed":
            return
        number = body["credential"]
        seen = self.devices.setdefault(number, set())
        seen.add(body["device"])
        self.first.setdefault(number, time.perf_counter())
        wanted = self.waiting.get(number)
        if wanted is not None and len(seen) >= wanted[0]:
            self.loop.call_soon_threadsafe(wanted[1].set)


async def run(
    sites: int,
    revocations: int,
    idle_s: float,
    sync_timeout_s: float = 600.0,
    confirm_wait_s: float = 0.0,
) -> dict[str, object]:
    import psutil

    from gateway.agent import SiteHub
    from gateway.commands import model as cmd
    from gateway.config import Settings
    from gateway.core import Submission
    from gateway.demo.broker import PrivateMosquitto
    from gateway.store import device_records as sync_store
    from gateway.store import fact_repository as fact_store
    from gateway.store import migrate
    from gateway.store.database import Database
    from gateway.sync.events import Sinks
    from tests.gateway.agent.facts import card, site_facts, tag
    from tests.gateway.agent.processes import AgentProcess, agent_config
    from tests.gateway.running import gateway_of, sync_core

    site_ids = [f"site{i:03d}" for i in range(sites)]
    controllers = {s: [f"{s}-c{j}" for j in range(CONTROLLERS_PER_SITE)] for s in site_ids}
    everything = [c for ids in controllers.values() for c in ids]
    people = revocations + 5
    with tempfile.TemporaryDirectory() as tmp_name, PrivateMosquitto() as broker:
        tmp = Path(tmp_name)
        sim, options = _start_simulators(everything)
        assert sim.stdin is not None
        assert sim.stdout is not None
        agents: list[AgentProcess] = []
        try:
            url = f"sqlite:///{tmp}/core.db"
            migrate.upgrade(url)
            db = Database(url)
            with db.session() as s:
                fact_store.put_many(s, site_facts(everything, people))  # type: ignore[arg-type]
            settings = Settings.model_validate(
                {
                    "database": {"url": url},
                    "mqtt": {"host": broker.host, "port": broker.port},
                    "sync": {"tick_s": 1.0},
                }
            )
            core, _ = sync_core(db, settings)
            sink = _Confirmations(asyncio.get_running_loop())
            hub = SiteHub(settings.mqtt, Sinks([sink]))
            gateway = gateway_of(settings, core, services=[hub])
            await gateway.start()
            try:
                started = time.monotonic()
                for site in site_ids:
                    config = agent_config(
                        tmp / f"{site}.toml",
                        broker.host,
                        broker.port,
                        {cid: options[cid] for cid in controllers[site]},
                        confirm_wait_s=confirm_wait_s,
                    )
                    agent = AgentProcess(site, config, tmp / f"{site}.db", tmp / f"{site}.log")
                    agent.start()
                    agents.append(agent)

                def synced() -> bool:
                    with core.db.session(readonly=True) as s:
                        held = {c.controller_id: c.revision for c in sync_store.all_controllers(s)}
                    return all(
                        held.get(c) == core.engine.controller_revision(c) for c in everything
                    )

                while not await gateway.call(synced):
                    if time.monotonic() - started > sync_timeout_s:
                        raise SystemExit(
                            f"the first sync did not finish within {sync_timeout_s:g} s"
                        )
                    await asyncio.sleep(0.2)
                first_sync_s = time.monotonic() - started
                print(
                    f"{sites} sites, {len(everything)} controllers synced in {first_sync_s:.1f} s"
                )

                # idle cost of the core
                await asyncio.sleep(2)
                me = psutil.Process(os.getpid())
                me.cpu_percent(None)
                msgs = hub.messages_in + hub.messages_out
                await asyncio.sleep(idle_s)
                idle_cpu = me.cpu_percent(None)
                idle_msgs = (hub.messages_in + hub.messages_out - msgs) / idle_s
                print(f"idle: core CPU {idle_cpu:.1f} %, {idle_msgs:.2f} MQTT messages/s")

                confirm_s, confirmations = hub.confirm_s, hub.confirmations
                messages_in = hub.messages_in
                procs = {
                    "core": me,
                    "simulators": psutil.Process(sim.pid),
                    **{f"agent-{a.site}": psutil.Process(a.pid) for a in agents},
                }

                def cpu() -> dict[str, float]:
                    return {k: sum(p.cpu_times()[:2]) for k, p in procs.items()}

                cpu_before = cpu()
                latencies: list[float] = []
                firsts: list[float] = []
                for i in range(revocations):
                    done = asyncio.Event()
                    sink.waiting[tag(i)] = (len(everything), done)
                    outcome = await gateway.call(
                        core.submit, Submission(cmd.BlockId06(card_number=card(i)), "bench")
                    )
                    if not outcome.ok:
                        raise SystemExit(f"block refused: {outcome.error}")
                    accepted = time.perf_counter()
                    try:
                        await asyncio.wait_for(done.wait(), 30)
                    except TimeoutError:
                        seen = len(sink.devices.get(tag(i), ()))
                        raise SystemExit(
                            f"revocation {i}: {seen} of {len(everything)} confirmed in 30 s"
                        ) from None
                    latencies.append((time.perf_counter() - accepted) * 1000)
                    firsts.append((sink.first[tag(i)] - accepted) * 1000)
                    await asyncio.sleep(0.2)
                cpu_after = cpu()
                up = (hub.messages_in - messages_in) / revocations
                spent = {k: cpu_after[k] - cpu_before[k] for k in procs}
                cpu_ms = {
                    "core": spent["core"],
                    "simulators": spent["simulators"],
                    "agents": sum(v for k, v in spent.items() if k.startswith("agent-")),
                }
                per_confirmation_ms = (
                    (hub.confirm_s - confirm_s) / max(1, hub.confirmations - confirmations) * 1000
                )
                sim.stdin.write("check " + " ".join(tag(i) for i in range(revocations)) + "\n")
                sim.stdin.flush()
                still_holding = json.loads(sim.stdout.readline())
            finally:
                await gateway.stop()
        finally:
            for agent in agents:
                agent.stop()
            if sim.stdin is not None:
                sim.stdin.close()
            sim.wait(10)
    print(
        f"{revocations} revocations to {len(everything)} controllers: "
        f"p50 {percentile(latencies, 50):.0f} ms, p99 {percentile(latencies, 99):.0f} ms"
    )
    return {
        "sites": sites,
        "controllers": len(everything),
        "revocations": revocations,
        "revocation_p50_ms": round(statistics.median(latencies), 1),
        "revocation_p99_ms": round(percentile(latencies, 99), 1),
        "revocation_max_ms": round(max(latencies), 1),
        "first_controller_p50_ms": round(statistics.median(firsts), 1),
        "first_sync_s": round(first_sync_s, 2),
        "idle_core_cpu_pct": round(idle_cpu, 2),
        "idle_core_cpu_pct_per_site": round(idle_cpu / sites, 3),
        "idle_mqtt_msgs_per_s": round(idle_msgs, 3),
        "core_ms_per_confirmation": round(per_confirmation_ms, 2),
        "mqtt_msgs_up_per_revocation": round(up, 1),
        "confirm_wait_s": confirm_wait_s,
        **{
            f"cpu_ms_per_revocation_{k}": round(v / revocations * 1000, 1)
            for k, v in cpu_ms.items()
        },
        "still_holding": len(still_holding),
        "load_average_1m": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--revocations", type=int, default=20)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument(
        "--sync-timeout-s",
        type=float,
        default=600.0,
        help="Longest wait for the agents to start and sync (their imports on a busy machine).",
    )
    parser.add_argument(
        "--confirm-wait-s",
        type=float,
        default=0.0,
        help="The agents' sync.confirm_wait_s (waiting to send a site's confirmations together).",
    )
    parser.add_argument("--simulate", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.simulate:
        asyncio.run(serve_simulators(args.simulate.split(",")))
        return
    if args.sites < 1 or args.revocations < 1:
        parser.error("--sites and --revocations: must be at least 1")
    logging.getLogger("mqtt").setLevel(logging.ERROR)  # counts of pending publications
    result = asyncio.run(
        run(args.sites, args.revocations, args.idle_s, args.sync_timeout_s, args.confirm_wait_s)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

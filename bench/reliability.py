"""Reliability trials: ``lockgate run`` killed with SIGKILL, and the broker restarted or killed,
in the middle of a stream of requests, on SQLite and on PostgreSQL.

Each trial streams ``--stream`` competence changes (QoS 1, unique request ids) from a central
system that behaves as docs/mqtt.md asks: a persistent session of its own, and every request
without a response after ``--resend-s`` seconds sent again with the same request id. In the
middle of the stream one failure is injected:

- ``kill``: the gateway process is killed with SIGKILL and started again;
- ``broker-restart``: the broker is stopped gracefully and started again;
- ``broker-kill``: the broker is killed with SIGKILL and started again (it loses what it had
  not saved yet: the central system's resends and the gateway's replay recover it).

Counted per trial, from the store and from the responses: **lost** (a request whose response
said ok but which is not in the inbox, or one never answered), **doubled** (a change applied
more than once: more than one journal entry for its fact), **stalled** (requests still
unanswered ``--stall-s`` seconds after the failure) and **mismatched** (repeated responses to
one request that differ). The broker runs the shipped production configuration
(deploy/mosquitto). The last line of output is one JSON object.

    python bench/reliability.py [--db sqlite|postgresql|both] [--trials 3] [--stream 600]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.demo.broker import DeployedMosquitto  # noqa: E402
from tests.trial_load import competence, count_store, prepare  # noqa: E402

BASE = "lockgate"
PASSWORDS = {"lockgate": "trial-gateway", "central": "trial-central"}
LOCKGATE = str(Path(sys.executable).parent / "lockgate")
PG_ADMIN = os.environ.get(
    "LOCKGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
FAILURES = ("kill", "broker-restart", "broker-kill")


def log(message: str) -> None:
    print(f"[reliability] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


class Gateway:
    def __init__(self, folder: Path, url: str, broker: DeployedMosquitto) -> None:
        self.config = folder / "lockgate.toml"
        self.config.write_text(f"""
[database]
url = "{url}"

[mqtt]
host = "{broker.host}"
port = {broker.port}
base_topic = "{BASE}"
username = "lockgate"
password = "{PASSWORDS["lockgate"]}"
session_expiry_s = 3600
keepalive_s = 5
""")
        self.log = folder / "gateway.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [LOCKGATE, "run", "--config", str(self.config)], stdout=out, stderr=out
            )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


class Central:
    """The central system: a persistent session, resending what got no response."""

    def __init__(self, broker: DeployedMosquitto) -> None:
        self.broker = broker
        self.responses: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.online = asyncio.Event()

    def client(self) -> aiomqtt.Client:
        return aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            username="central",
            password=PASSWORDS["central"],
            protocol=aiomqtt.ProtocolVersion.V5,
            identifier="central",
            clean_start=False,
            max_inflight_messages=100,
            timeout=10,
        )

    async def run(self, stop: asyncio.Event, outbox: asyncio.Queue[tuple[str, bytes]]) -> None:
        """Keep a connection up: collect responses, publish what ``outbox`` holds."""
        while not stop.is_set():
            try:
                async with self.client() as c:
                    await c.subscribe(f"{BASE}/v1/response/#", qos=1)
                    self.online.set()
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._receive(c))
                        tg.create_task(self._send(c, outbox))
                        tg.create_task(_end_when(stop))
            except* _Stopped:
                pass
            except* (aiomqtt.MqttError, OSError):
                self.online.clear()
                await asyncio.sleep(0.5)

    async def _receive(self, c: aiomqtt.Client) -> None:
        async for message in c.messages:
            body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
            if body.get("request_id"):
                self.responses[body["request_id"]].append(body)

    async def _send(self, c: aiomqtt.Client, outbox: asyncio.Queue[tuple[str, bytes]]) -> None:
        while True:
            rid, payload = await outbox.get()
            try:
                await c.publish(f"{BASE}/v1/request/competence", payload, qos=1)
            except aiomqtt.MqttError:
                outbox.put_nowait((rid, payload))  # not acknowledged by the broker: again
                raise


class _Stopped(Exception):
    pass


async def _end_when(stop: asyncio.Event) -> None:
    await stop.wait()
    raise _Stopped


# --------------------------------------------------------------------------- one trial


async def trial(
    kind: str,
    url: str,
    folder: Path,
    broker: DeployedMosquitto,
    gateway: Gateway,
    n: int,
    resend_s: float,
    stall_s: float,
) -> dict[str, Any]:
    name = f"t{uuid.uuid4().hex[:8]}"
    central = Central(broker)
    outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    stop = asyncio.Event()
    runner = asyncio.create_task(central.run(stop, outbox), name="central")
    payloads = {f"{name}-{i}": competence(name, i) for i in range(n)}
    sent_at: dict[str, float] = {}
    try:
        await asyncio.wait_for(central.online.wait(), 30)
        for rid, payload in payloads.items():
            outbox.put_nowait((rid, payload))
            sent_at[rid] = time.monotonic()

        async with asyncio.timeout(60):
            while sum(r in central.responses for r in payloads) < n // 4:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        failed_at = time.monotonic()
        if kind == "kill":
            gateway.kill()
            gateway.start()
        elif kind == "broker-restart":
            broker.restart()
        else:
            broker.kill()
            broker.start()
        deadline = failed_at + stall_s
        resent = 0
        while time.monotonic() < deadline:
            missing = [r for r in payloads if r not in central.responses]
            if not missing:
                break
            now = time.monotonic()
            for rid in missing:
                if now - sent_at[rid] > resend_s:
                    outbox.put_nowait((rid, payloads[rid]))
                    sent_at[rid] = now
                    resent += 1
            await asyncio.sleep(0.2)
        recovered_s = time.monotonic() - failed_at
    finally:
        stop.set()
        await runner
    ids, applied = count_store(url, name)
    unanswered = [r for r in payloads if r not in central.responses]
    ok_not_stored = [
        r
        for r in payloads
        if any(a["status"] == "ok" for a in central.responses.get(r, [])) and r not in ids
    ]
    return {
        "failure": kind,
        "requests": n,
        "lost": len(ok_not_stored) + len([r for r in unanswered if r not in ids]),
        "doubled": sum(1 for c in applied.values() if c > 1),
        "stalled": len(unanswered),
        "mismatched": sum(
            1
            for r in payloads
            if len({json.dumps(a, sort_keys=True) for a in central.responses.get(r, [])}) > 1
        ),
        "repeated_responses": sum(max(0, len(central.responses.get(r, [])) - 1) for r in payloads),
        "resent": resent,
        "recovered_s": round(recovered_s, 2),
    }


async def wait_online(broker: DeployedMosquitto, limit_s: float = 60.0) -> None:
    async with (
        asyncio.timeout(limit_s),
        aiomqtt.Client(
            broker.host,
            broker.port,
            username="central",
            password=PASSWORDS["central"],
            protocol=aiomqtt.ProtocolVersion.V5,
            identifier="central-watch",
        ) as c,
    ):
        await c.subscribe(f"{BASE}/v1/bridge/state", qos=1)
        async for message in c.messages:
            if json.loads(bytes(message.payload) or b"{}").get("state") == "online":  # type: ignore[arg-type]
                return


# --------------------------------------------------------------------------- a database


def database(kind: str, folder: Path) -> tuple[str, Callable[[], None]]:
    if kind == "sqlite":
        return f"sqlite:///{folder / 'trial.db'}", lambda: None
    name = f"lockgate_trial_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop


async def run_db(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"lockgate-trial-{kind}-"))
    url, drop = database(kind, folder)
    results: list[dict[str, Any]] = []
    with DeployedMosquitto(ROOT / "deploy" / "mosquitto", PASSWORDS) as broker:
        try:
            prepare(url)
            gateway = Gateway(folder, url, broker)
            gateway.start()
            await wait_online(broker)  # its session exists: requests are queued for it now
            try:
                for i in range(args.trials):
                    for failure in FAILURES:
                        result = await trial(
                            failure,
                            url,
                            folder,
                            broker,
                            gateway,
                            args.stream,
                            args.resend_s,
                            args.stall_s,
                        )
                        log(f"{kind} #{i + 1}: {result}")
                        results.append(result)
            finally:
                gateway.stop()
        finally:
            drop()
    summary: dict[str, Any] = {"trials": len(results)}
    for key in ("lost", "doubled", "stalled", "mismatched", "repeated_responses", "resent"):
        summary[key] = sum(r[key] for r in results)
    for failure in FAILURES:
        times = [r["recovered_s"] for r in results if r["failure"] == failure]
        summary[f"{failure}_recovered_s_max"] = max(times) if times else None
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--trials", type=int, default=3, help="rounds of the three failures")
    parser.add_argument("--stream", type=int, default=600, help="requests per trial")
    parser.add_argument("--resend-s", type=float, default=10.0)
    parser.add_argument("--stall-s", type=float, default=90.0)
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    out = {kind: asyncio.run(run_db(kind, args)) for kind in kinds}
    out["ok"] = all(
        out[k][x] == 0 for k in kinds for x in ("lost", "doubled", "stalled", "mismatched")
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""Start-up benchmark: ``lockgate run`` on a store of N credentials until it serves.

1. A store (SQLite file, or with ``--db postgresql`` a fresh PostgreSQL database) gets the
   synthetic site of ``bench/rules.py`` (N people with an employment and a key in service,
   applications, spaces, controllers), written straight through the fact repository, and its
   derived states once (as a gateway that ran before leaves them), and the operator that MQTT
   requests act as.
2. A private Mosquitto runs the production configuration (deploy/mosquitto).
3. ``lockgate run`` starts as a subprocess; timed from the spawn: ``online_s``, when its
   bridge announces itself online, and ``ready_s``, when a request sent then (a person update,
   QoS 1) is answered. The broker is new, so the gateway also queues the retained state of
   every credential, as on a first start: the request is served beside that.
   ``online_cpu_s`` and ``ready_cpu_s`` are the CPU time the gateway process used until
   each (on a shared machine the wall clock also counts the other processes' turns; and the
   later ``ready_cpu_s`` also counts the retained states published meanwhile, the more of
   them the longer a loaded machine makes the wall clock).

Target (issue 14): ``ready_s`` at most 10 s at 100k credentials. The last line of output is
one JSON object.

    python bench/startup.py [--size 100000] [--db sqlite|postgresql] [--profile FILE]
                            [--store FILE]

``--store FILE`` (SQLite) keeps the built store in FILE and reuses it when it exists, so that
repeated measurements skip building it (copy it first: the gateway writes to it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import ingest  # noqa: E402
import rules  # noqa: E402

from gateway.auth import operators  # noqa: E402
from gateway.auth.passwords import hash_token, new_token  # noqa: E402
from gateway.core import Core  # noqa: E402
from gateway.demo.broker import DeployedMosquitto  # noqa: E402
from gateway.store import fact_repository, migrate  # noqa: E402
from gateway.store.database import Database  # noqa: E402

TARGET_S = 10.0
BASE = ingest.BASE
PASSWORDS = ingest.PASSWORDS


def log(message: str) -> None:
    print(f"[startup] {message}", file=sys.stderr, flush=True)


def build_store(url: str, size: int) -> None:
    """The site of bench/rules.py, its derived states, and the MQTT operator."""
    migrate.upgrade(url)
    db = Database(url)
    try:
        batch: list[Any] = []
        for fact in rules.site_facts(size):
            batch.append(fact)
            if len(batch) == 5000:
                with db.session() as s:
                    fact_repository.put_many(s, batch)
                batch = []
        with db.session() as s:
            fact_repository.put_many(s, batch)
        Core(db).load()  # the derived states a gateway that ran before leaves behind
        with db.session() as s:
            operators.add(
                s,
                name="central-system",
                role="system",
                created_by="bench",
                token_hash=hash_token(new_token()),
                at=datetime.now(UTC),
            )
    finally:
        db.dispose()


def cpu_of(pid: int) -> float:
    """CPU time (user and system) of process ``pid`` so far, in seconds."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def first_response(
    broker: DeployedMosquitto, spawned: float, pid: int
) -> tuple[float, float, float]:
    """(online_s, online_cpu_s, ready_s) after ``spawned`` (a perf_counter instant)."""
    client = aiomqtt.Client(
        broker.host,
        broker.port,
        username="central",
        password=PASSWORDS["central"],
        protocol=aiomqtt.ProtocolVersion.V5,
        identifier=f"startup-{uuid.uuid4().hex[:6]}",
    )
    async with client:
        await client.subscribe(f"{BASE}/v1/bridge/state", qos=1)
        await client.subscribe(f"{BASE}/v1/response/#", qos=1)
        online_s: float | None = None
        online_cpu_s = 0.0
        rid = f"startup-{uuid.uuid4().hex[:8]}"
        async with asyncio.timeout(300):
            async for msg in client.messages:
                data = json.loads(msg.payload or b"{}")
                if (
                    online_s is None
                    and msg.topic.matches(f"{BASE}/v1/bridge/state")
                    and data.get("state") == "online"
                    and not msg.retain
                ):
                    online_s = time.perf_counter() - spawned
                    online_cpu_s = cpu_of(pid)
                    request = {
                        "request_id": rid,
                        "person": {
                            "id": "p0",
                            "first_name": "First",
                            "last_name": "Last0",
                            "mobile": "+46700000001",
                        },
                    }
                    await client.publish(
                        f"{BASE}/v1/request/person", json.dumps(request).encode(), qos=1
                    )
                elif data.get("request_id") == rid:
                    if data.get("status") != "ok":
                        raise RuntimeError(f"the request was refused: {data}")
                    assert online_s is not None
                    return online_s, online_cpu_s, time.perf_counter() - spawned
    raise RuntimeError("no response")


async def measure(url: str, folder: Path, profile: str | None = None) -> dict[str, Any]:
    with DeployedMosquitto(ROOT / "deploy" / "mosquitto", PASSWORDS) as broker:
        config = folder / "lockgate.toml"
        config.write_text(
            f'[database]\nurl = "{url}"\n\n[mqtt]\nhost = "{broker.host}"\n'
            f'port = {broker.port}\nbase_topic = "{BASE}"\nusername = "lockgate"\n'
        )
        env = {**os.environ, "LOCKGATE_MQTT__PASSWORD": PASSWORDS["lockgate"]}
        logfile = (folder / "gateway.log").open("wb")
        spawned = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "lockgate"),
            "run",
            "--config",
            str(config),
            "--log-format",
            "json",
            "--log-level",
            "warning",
            env=env,
            stdout=logfile,
            stderr=logfile,
            cwd=folder,
        )
        spy = None
        if profile:
            spy = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--rate",
                "100",
                "--format",
                "raw",
                "-o",
                profile,
                "--pid",
                str(proc.pid),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        watcher = asyncio.create_task(
            first_response(broker, spawned, proc.pid), name="startup-watch"
        )
        try:
            online_s, online_cpu_s, ready_s = await watcher
            ready_cpu_s = cpu_of(proc.pid)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                await spy.wait()
        except BaseException:
            logfile.flush()
            log("gateway log:\n" + (folder / "gateway.log").read_text(errors="replace")[-3000:])
            raise
        finally:
            watcher.cancel()
            proc.terminate()
            await proc.wait()
            logfile.close()
    return {
        "online_s": round(online_s, 2),
        "ready_s": round(ready_s, 2),
        "online_cpu_s": round(online_cpu_s, 2),
        "ready_cpu_s": round(ready_cpu_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="credentials in the store")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--pg-admin",
        default=os.environ.get(
            "LOCKGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument(
        "--profile",
        default=None,
        metavar="FILE",
        help="sample the gateway with py-spy (every thread) until it is ready, into FILE",
    )
    parser.add_argument(
        "--store",
        default=None,
        metavar="FILE",
        help="SQLite: build the store into FILE once and start from a copy of it after that",
    )
    args = parser.parse_args()
    if args.store and args.db != "sqlite":
        parser.error("--store: only with --db sqlite")
    if args.size < 100:
        parser.error("--size: at least 100")
    with tempfile.TemporaryDirectory(prefix="lockgate-startup-") as tmp:
        folder = Path(tmp)
        cleanup: Callable[[], None] = lambda: None  # noqa: E731
        if args.db == "postgresql":
            url, cleanup = ingest.pg_database(args.pg_admin)
        else:
            url = f"sqlite:///{folder / 'startup.db'}"
        try:
            started = time.perf_counter()
            kept = Path(args.store) if args.store else None
            if kept is None or not kept.exists():
                build_store(url, args.size)
                log(
                    f"store of {args.size} credentials built in "
                    f"{time.perf_counter() - started:.0f} s"
                )
                if kept is not None:
                    shutil.copyfile(folder / "startup.db", kept)
            else:
                shutil.copyfile(kept, folder / "startup.db")
                log(f"store copied from {kept} (its size is what it was built with)")
            result = asyncio.run(measure(url, folder, args.profile))
        finally:
            cleanup()
    result.update(
        {
            "size": args.size,
            "db": args.db,
            "target_ready_s": TARGET_S,
            "met": result["ready_s"] <= TARGET_S,
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

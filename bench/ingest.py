"""Ingest benchmark: access changes over MQTT into a running gateway, against the raw round
trip of the same MQTT library through the same broker.

1. A private Mosquitto runs the production configuration (deploy/mosquitto, with the port,
   folders and password file of this run; the ACL as shipped).
2. A site is loaded into a fresh database (SQLite file, or with ``--db postgresql`` a fresh
   PostgreSQL database): one organisation, N/20 people with an employment, an ID06 card, a
   signed-for key and competences, an approved application, N/10 visitor cards.
3. **raw**: an echo process (aiomqtt, user ``lockgate``) answers every request topic on the
   matching response topic; the load generator (aiomqtt, user ``central``) sends N messages
   and waits for every echo.
4. **gateway**: ``lockgate run`` as a subprocess; once it is online and has published the
   retained state of every credential that it queues again at start-up (a steady state, as
   the raw echo has no start-up work), the load generator sends N access changes
   of mixed kinds (competence renewals and withdrawals, person updates, ID06 blocks and
   unblocks, visitor card changes and returns, key orders) as QoS 1 requests and waits for
   every response.

Both loads keep at most ``--window`` requests outstanding (a flood, but with the bounded
in-flight window of a real central system), so the latency percentiles measure the system
and not an ever-growing queue at the publisher. The flood reports ``ratio`` (accepted
changes/s over raw round trips/s; target 0.6 on SQLite, 0.5 on PostgreSQL) and
``gateway_cpu_ms_per_request``, the CPU time the gateway process spent per request during the
load (on a shared machine the figure that moves least from run to run).

With ``--rate R`` both loads send at a fixed R requests/s instead (a realistic load, not a
flood) and the result is the request→response latency (target p99: 20 ms on SQLite, 30 ms on
PostgreSQL at 100/s). The last line of output is one JSON object, with ``met``.

With ``--statements`` no broker runs: the changes are applied in-process through the core
with the gateway's listeners, half one request per transaction, half ``--batch`` per
transaction, and the result is the number of SQL statements per request (an executemany
counts once; ``BENCH_SHOW_SQL=1`` lists the statements of the first request of each kind,
``BENCH_SHOW_SQL=batch`` those of the last batch, counted).
The rate mode and the flood both report ``gateway_cpu_ms_per_request`` and
``gateway_cpu_system_share`` (the part of that CPU time spent in the kernel).

    python bench/ingest.py [--count 20000] [--db sqlite|postgresql] [--window 1000]
                           [--mix all|no-visitor-cards] [--rate R] [--profile FILE]
                           [--statements]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.auth import operators  # noqa: E402
from gateway.auth.passwords import hash_token, new_token  # noqa: E402
from gateway.commands import model as m  # noqa: E402
from gateway.core import Core, Submission  # noqa: E402
from gateway.demo.broker import DeployedMosquitto, PrivateMosquitto  # noqa: E402
from gateway.domain.facts import (  # noqa: E402
    AccessApplication,
    ApplicationEntry,
    ApplicationStatus,
    Assignment,
    Competence,
    DeliveryManifest,
    DoorRef,
    Employment,
    Id06Card,
    KeyGrantAgreement,
    KeyOrder,
    Organisation,
    Person,
    Space,
    VisitorReason,
)
from gateway.domain.identifiers import org_number_with_check_digit  # noqa: E402
from gateway.store import migrate  # noqa: E402
from gateway.store.database import Database  # noqa: E402

BASE = "lockgate"
PASSWORDS = {"lockgate": "bench-gateway", "central": "bench-central"}
ORG = org_number_with_check_digit("556677880")
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
FLOOD_TARGET_RATIO = {"sqlite": 0.6, "postgresql": 0.5}
"""Accepted changes/s at least this share of the raw echo rate of the same run."""
RATE_TARGET_P99_MS = {"sqlite": 20.0, "postgresql": 30.0}
"""At a fixed rate (``--rate``), request→response p99 at most this."""


def log(message: str) -> None:
    print(f"[ingest] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the broker


# --------------------------------------------------------------------------- the site


def setup_commands(people: int, visitors: int, today: date) -> list[m.Command]:
    now = datetime.now(UTC)
    cmds: list[m.Command] = [
        m.PutOrganisation(organisation=Organisation(org_number=ORG, name="Bench Bygg AB")),
        m.PutAgreement(
            agreement=KeyGrantAgreement(
                id="agr",
                org_number=ORG,
                signed_on=today - timedelta(days=100),
                valid_from=today - timedelta(days=100),
            )
        ),
        m.PutSpace(space=Space(id="sp-a", name="Teknikhus A", cylinders=("300001", "300002"))),
        m.PutSpace(
            space=Space(
                id="sp-b",
                name="Teknikhus B",
                cylinders=("300003",),
                required_competences=("EL",),
            )
        ),
        m.PutSpace(
            space=Space(
                id="sp-office",
                name="Kontor",
                doors=(DoorRef(controller_id="ctrl-1", door=1),),
            )
        ),
        m.PutAssignment(
            assignment=Assignment(
                id="asg",
                name="Bench",
                main_contractor=ORG,
                project_manager="PM",
                starts_on=today - timedelta(days=30),
                ends_on=today + timedelta(days=400),
            )
        ),
    ]
    for i in range(people):
        cmds += [
            m.PutPerson(person=Person(id=f"p{i}", first_name="Bench", last_name=f"P{i}")),
            m.PutEmployment(
                employment=Employment(
                    id=f"e{i}",
                    person_id=f"p{i}",
                    org_number=ORG,
                    id06=Id06Card(card_number=f"ID06B{i:06d}", valid_until=today + timedelta(500)),
                )
            ),
            m.PutCompetence(
                competence=Competence(
                    person_id=f"p{i}", code="EL", valid_until=today + timedelta(300)
                )
            ),
            m.PutCompetence(
                competence=Competence(
                    person_id=f"p{i}", code="R1", valid_until=today + timedelta(300)
                )
            ),
            m.PutCompetence(
                competence=Competence(
                    person_id=f"p{i}", code="R2", valid_until=today + timedelta(300)
                )
            ),
        ]
    keys = [f"{700000000 + i}" for i in range(people)]
    for start in range(0, people, 500):
        chunk = keys[start : start + 500]
        oid = f"order-{start}"
        cmds += [
            m.PlaceKeyOrder(
                order=KeyOrder(
                    id=oid,
                    org_number=ORG,
                    quantity=len(chunk),
                    delivery_address="Bench 1",
                    ordered_at=now - timedelta(days=20),
                )
            ),
            m.RegisterDelivery(
                manifest=DeliveryManifest(
                    order_id=oid, delivered_at=now - timedelta(days=10), key_serials=tuple(chunk)
                )
            ),
        ]
    for i, key in enumerate(keys):
        cmds += [
            m.HandOut(credential_number=key, employment_id=f"e{i}", at=now - timedelta(days=9)),
            m.SignReceipt(credential_number=key, signed_at=now - timedelta(days=8)),
        ]
    cmds.append(
        m.PutApplication(
            application=AccessApplication(
                assignment_id="asg",
                revision=1,
                status=ApplicationStatus.APPROVED,
                submitted_at=now - timedelta(days=7),
                decided_at=now - timedelta(days=6),
                entries=tuple(
                    ApplicationEntry(
                        employment_id=f"e{i}",
                        space_ids=("sp-a", "sp-b"),
                        valid_from=today - timedelta(days=5),
                        valid_until=today + timedelta(200),
                    )
                    for i in range(people)
                ),
            )
        )
    )
    for v in range(visitors):
        cmds.append(
            m.IssueVisitorCard(
                number=f"{900000 + v}",
                holder_name="Visitor",
                company="Supplier AB",
                mobile="+46700000000",
                sponsor_employment_id=f"e{v % people}",
                reason=VisitorReason.SUPPLIER,
                space_ids=("sp-office",),
                valid_until=now + timedelta(days=3),
                confirmed_in_person=True,
                return_duty_acknowledged=True,
            )
        )
    return cmds


def load_site(url: str, count: int) -> tuple[int, int]:
    people = max(50, count // 20)
    visitors = max(20, count // 10)
    migrate.upgrade(url)
    db = Database(url)
    try:
        core = Core(db)
        core.load()
        cmds = setup_commands(people, visitors, date.today())
        for start in range(0, len(cmds), 1000):
            outcomes = core.submit_many(
                [Submission(c, "bench-setup") for c in cmds[start : start + 1000]], atomic=True
            )
            assert all(o.ok for o in outcomes)
        # What an administrator does once: the operator MQTT requests act as.
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
    return people, visitors


def changes(
    count: int, people: int, visitors: int, *, visitor_cards: bool = True, seed: int = 7
) -> list[m.Command]:
    """``count`` access changes of mixed kinds, each valid in the order given, even with
    revocations overtaking (an unblock always comes after its block). Without
    ``visitor_cards`` their 10 % share goes to competence renewals."""
    rnd = random.Random(seed)
    today = date.today()
    now = datetime.now(UTC).replace(microsecond=0)
    n = {
        "renew": count * 30 // 100,
        "person": count * 20 // 100,
        "new_code": count * 15 // 100,
        "block": count // 20,
        "unblock": count // 20,
        "remove": count // 10,
        "visitor_change": count // 20 if visitor_cards else 0,
        "visitor_return": count // 20 if visitor_cards else 0,
        "order": count // 20,
    }
    n["renew"] += count - sum(n.values())
    out: list[m.Command] = []
    for i in range(n["renew"]):
        out.append(
            m.PutCompetence(
                competence=Competence(
                    person_id=f"p{rnd.randrange(people)}",
                    code="EL",
                    valid_until=today + timedelta(days=200 + i % 300),
                )
            )
        )
    for i in range(n["person"]):
        p = rnd.randrange(people)
        out.append(
            m.PutPerson(
                person=Person(
                    id=f"p{p}", first_name="Bench", last_name=f"P{p}", mobile=f"+4670{i:07d}"
                )
            )
        )
    for i in range(n["new_code"]):
        out.append(
            m.PutCompetence(
                competence=Competence(
                    person_id=f"p{rnd.randrange(people)}",
                    code=f"N{i}",
                    valid_until=today + timedelta(90),
                )
            )
        )
    removals = [(p, code) for p in range(people) for code in ("R1", "R2")]
    rnd.shuffle(removals)
    for p, code in removals[: n["remove"]]:
        out.append(m.RemoveCompetence(person_id=f"p{p}", code=code))
    cards = list(range(visitors))
    rnd.shuffle(cards)
    for v in cards[: n["visitor_change"]]:
        out.append(m.ChangeVisitorCard(number=f"{900000 + v}", valid_until=now + timedelta(days=5)))
    for v in cards[n["visitor_change"] : n["visitor_change"] + n["visitor_return"]]:
        out.append(m.ReturnVisitorCard(number=f"{900000 + v}"))
    for i in range(n["order"]):
        out.append(
            m.PlaceKeyOrder(
                order=KeyOrder(
                    id=f"bench-order-{i}",
                    org_number=ORG,
                    quantity=1,
                    delivery_address="Bench 2",
                    ordered_at=now,
                )
            )
        )
    blocked = rnd.sample(range(people), n["block"])
    out += [m.BlockId06(card_number=f"ID06B{p:06d}", reason="bench") for p in blocked]
    rnd.shuffle(out)
    for p in blocked[: n["unblock"]]:
        at = next(
            i
            for i, c in enumerate(out)
            if isinstance(c, m.BlockId06) and c.card_number == f"ID06B{p:06d}"
        )
        out.insert(rnd.randrange(at + 1, len(out) + 1), m.UnblockId06(card_number=f"ID06B{p:06d}"))
    return out


# --------------------------------------------------------------------------- load generator


async def drive(
    broker: PrivateMosquitto,
    messages: list[tuple[str, bytes, str]],
    window: int,
    rate: float | None = None,
) -> tuple[float, list[float], dict[str, dict[str, Any]]]:
    """Publish (topic, payload, request id) with at most ``window`` outstanding; wait for a
    response carrying each request id. With ``rate``, message i is sent at i/rate seconds
    after the start (a fixed rate, not a flood; a late send is not made up for by a burst
    beyond the schedule). Returns (seconds, latencies in ms, responses)."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
    responses: dict[str, dict[str, Any]] = {}
    slots = asyncio.Semaphore(window)
    done = asyncio.Event()
    client = aiomqtt.Client(
        broker.host,
        broker.port,
        username="central",
        password=PASSWORDS["central"],
        protocol=aiomqtt.ProtocolVersion.V5,
        identifier=f"bench-{uuid.uuid4().hex[:6]}",
        max_inflight_messages=100,
        socket_options=NODELAY,
        timeout=120,
    )
    client.pending_calls_threshold = 1 << 30
    async with client:
        await client.subscribe(f"{BASE}/v1/response/#", qos=1)

        async def receive() -> None:
            async for msg in client.messages:
                data = json.loads(msg.payload)
                rid = data.get("request_id")
                if rid in sent and rid not in responses:
                    latency = (time.perf_counter() - sent[rid]) * 1000
                    latencies.append(latency)
                    data["_latency_ms"] = latency
                    data["_sent_s"] = sent[rid] - start
                    responses[rid] = data
                    slots.release()
                    if len(responses) == len(messages):
                        done.set()

        start = time.perf_counter()
        receiver = asyncio.create_task(receive(), name="bench-receive")
        publishes: set[asyncio.Task[None]] = set()
        for i, (topic, payload, rid) in enumerate(messages):
            if rate is not None:
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            await slots.acquire()
            sent[rid] = time.perf_counter()
            task = asyncio.create_task(client.publish(topic, payload, qos=1))
            publishes.add(task)
            task.add_done_callback(publishes.discard)
        await asyncio.wait_for(done.wait(), 600)
        elapsed = time.perf_counter() - start
        receiver.cancel()
        await asyncio.gather(receiver, *publishes, return_exceptions=True)
    return elapsed, latencies, responses


ECHO = """
import asyncio, socket, sys, aiomqtt
async def main():
    host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    c = aiomqtt.Client(host, port, username="lockgate", password=password,
        protocol=aiomqtt.ProtocolVersion.V5, max_inflight_messages=100, timeout=120,
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    c.pending_calls_threshold = 1 << 30
    async with c:
        await c.subscribe("lockgate/v1/request/+", qos=1)
        print("ready", flush=True)
        pending = set()
        async for m in c.messages:
            name = m.topic.value.rsplit("/", 1)[1]
            t = asyncio.create_task(c.publish("lockgate/v1/response/" + name, m.payload, qos=1))
            pending.add(t); t.add_done_callback(pending.discard)
asyncio.run(main())
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def peak_rss_mb(pid: int, sampled: float) -> float:
    """Peak resident set size of a live process (VmHWM), or the highest sample taken."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return sampled


async def sample_rss(pid: int, stop: asyncio.Event, peak: list[float]) -> None:
    proc = psutil.Process(pid)
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], proc.memory_info().rss / 2**20)
        except psutil.Error:
            return
        await asyncio.sleep(0.2)


# --------------------------------------------------------------------------- main


def pg_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"lockgate_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return url, drop


async def bench(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if args.db == "postgresql":
        url, cleanup = pg_database(args.pg_admin)
    else:
        url = f"sqlite:///{folder / 'bench.db'}"
    try:
        t = time.perf_counter()
        people, visitors = load_site(url, args.site)
        took = time.perf_counter() - t
        log(f"site loaded: {people} people, {visitors} visitor cards ({took:.1f} s)")
        stream = changes(args.count, people, visitors, visitor_cards=args.mix == "all")
        with DeployedMosquitto(ROOT / "deploy" / "mosquitto", PASSWORDS) as broker:
            raw = await raw_round_trip(broker, args)
            gateway = await gateway_run(broker, args, url, folder, stream)
    finally:
        cleanup()
    accepted_per_s = gateway["accepted"] / gateway["seconds"]
    raw_per_s = args.count / raw["seconds"]
    if args.rate is not None:
        target = RATE_TARGET_P99_MS[args.db]
        p99 = percentile(gateway["latencies"], 0.99)
        return {
            "mode": "rate",
            "rate_per_s": args.rate,
            "latency_p50_ms": round(statistics.median(gateway["latencies"]), 1),
            "latency_p99_ms": round(p99, 1),
            "latency_max_ms": round(max(gateway["latencies"]), 1),
            "target_p99_ms": target,
            "met": p99 <= target and not gateway["errors"],
            "raw_latency_p50_ms": round(statistics.median(raw["latencies"]), 1),
            "raw_latency_p99_ms": round(percentile(raw["latencies"], 0.99), 1),
            "accepted_per_s": round(accepted_per_s, 1),
            "db": args.db,
            "requests": args.count,
            "mix": args.mix,
            "errors": gateway["errors"],
            "gateway_peak_rss_mb": round(gateway["rss_mb"], 1),
            "gateway_cpu_ms_per_request": gateway["cpu_ms_per_request"],
            "gateway_cpu_system_share": gateway["cpu_system_share"],
        }
    return {
        "mode": "flood",
        "accepted_per_s": round(accepted_per_s, 1),
        "raw_per_s": round(raw_per_s, 1),
        "ratio": round(accepted_per_s / raw_per_s, 3),
        "target_ratio": FLOOD_TARGET_RATIO[args.db],
        "met": accepted_per_s / raw_per_s >= FLOOD_TARGET_RATIO[args.db],
        "latency_p50_ms": round(statistics.median(gateway["latencies"]), 1),
        "latency_p99_ms": round(percentile(gateway["latencies"], 0.99), 1),
        "gateway_peak_rss_mb": round(gateway["rss_mb"], 1),
        "gateway_cpu_ms_per_request": gateway["cpu_ms_per_request"],
        "gateway_cpu_system_share": gateway["cpu_system_share"],
        "db": args.db,
        "requests": args.count,
        "mix": args.mix,
        "errors": gateway["errors"],
        "window": args.window,
        "raw_latency_p50_ms": round(statistics.median(raw["latencies"]), 1),
        "raw_latency_p99_ms": round(percentile(raw["latencies"], 0.99), 1),
        "outbox_drained_s": gateway["drained_s"],
    }


async def raw_round_trip(broker: PrivateMosquitto, args: argparse.Namespace) -> dict[str, Any]:
    echo = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        ECHO,
        broker.host,
        str(broker.port),
        PASSWORDS["lockgate"],
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert echo.stdout is not None
        if (await echo.stdout.readline()).strip() != b"ready":
            raise RuntimeError("the echo process did not start")
        messages = [
            (
                f"{BASE}/v1/request/echo",
                json.dumps({"request_id": f"raw-{i}", "n": i}).encode(),
                f"raw-{i}",
            )
            for i in range(args.count)
        ]
        seconds, latencies, _ = await drive(broker, messages, args.window, args.rate)
    finally:
        echo.terminate()
        await echo.wait()
    log(f"raw: {args.count / seconds:.0f} round trips/s")
    return {"seconds": seconds, "latencies": latencies}


async def gateway_run(
    broker: PrivateMosquitto,
    args: argparse.Namespace,
    url: str,
    folder: Path,
    stream: list[m.Command],
) -> dict[str, Any]:
    config = folder / "lockgate.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n\n[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
        f'base_topic = "{BASE}"\nusername = "lockgate"\nmax_batch = {args.batch}\n'
        f"max_pending = {args.pending}\n"
    )
    env = {**os.environ, "LOCKGATE_MQTT__PASSWORD": PASSWORDS["lockgate"]}
    messages = [
        (
            f"{BASE}/v1/request/{c.name}",
            json.dumps({"request_id": f"b-{i}", **c.model_dump(mode="json")}).encode(),
            f"b-{i}",
        )
        for i, c in enumerate(stream)
    ]
    logfile = (folder / "gateway.log").open("wb")
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
    stop = asyncio.Event()
    peak = [0.0]
    sampler = asyncio.create_task(sample_rss(proc.pid, stop, peak))
    try:
        try:
            await wait_online(broker)
        except TimeoutError:
            logfile.flush()
            log(
                "the gateway did not come online; its log ends:\n"
                + (folder / "gateway.log").read_text(errors="replace")[-3000:]
            )
            raise
        # A steady state for both modes: the retained state of every credential, queued again
        # at start-up in chunks, is out before the load starts (the raw echo it is compared
        # with has no start-up work either).
        while await wait_drained(url):
            await asyncio.sleep(1.0)
            if await wait_drained(url, limit_s=0.0, at_once=True):
                break
        profiler = await start_profiler(args.profile, proc.pid) if args.profile else None
        cpu_before = psutil.Process(proc.pid).cpu_times()
        seconds, latencies, responses = await drive(broker, messages, args.window, args.rate)
        cpu_after = psutil.Process(proc.pid).cpu_times()
        cpu_s = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
        system_s = cpu_after.system - cpu_before.system
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            await profiler.wait()
        errors = [r for r in responses.values() if r["status"] != "ok"]
        by_kind: dict[str, list[float]] = {}
        for topic, _, rid in messages:
            by_kind.setdefault(topic.rsplit("/", 1)[1], []).append(responses[rid]["_latency_ms"])
        slow = sorted(
            (round(r["_sent_s"], 2), round(r["_latency_ms"]))
            for r in responses.values()
            if r["_latency_ms"] > 30
        )
        if os.environ.get("BENCH_SHOW_SLOW"):
            log(f"slow (sent at s, ms): {slow}")
        for kind, values in sorted(by_kind.items()):
            log(
                f"{kind}: {len(values)} requests, p50 {statistics.median(values):.1f} ms, "
                f"p99 {percentile(values, 0.99):.1f} ms, max {max(values):.1f} ms"
            )
        for sample in errors[:5]:
            log(f"error response: {sample}")
        t = time.perf_counter()
        drained = await wait_drained(url)
        drained_s = round(time.perf_counter() - t, 1) if drained else None
        rss = peak_rss_mb(proc.pid, peak[0])
    finally:
        stop.set()
        await sampler
        proc.terminate()
        await proc.wait()
        logfile.close()
    log(f"gateway: {len(responses) / seconds:.0f} responses/s, {len(errors)} errors")
    return {
        "seconds": seconds,
        "latencies": latencies,
        "accepted": len(responses) - len(errors),
        "errors": len(errors),
        "rss_mb": rss,
        "drained_s": drained_s,
        "cpu_ms_per_request": round(cpu_s * 1000 / max(1, len(responses)), 3),
        "cpu_system_share": round(system_s / cpu_s, 3) if cpu_s > 0 else 0.0,
    }


async def start_profiler(path: str, pid: int) -> asyncio.subprocess.Process:
    """py-spy sampling the gateway during the load: ``--gil`` keeps the samples of the thread
    holding the GIL, i.e. where the one Python process spends its one core. With
    ``BENCH_PROFILE_WALL=1`` every thread is sampled, waiting ones too (``--idle``): where
    each thread's wall-clock time goes, e.g. the core thread waiting on the database.
    Collapsed stacks (one line per stack), written when it gets SIGINT."""
    mode = "--idle" if os.environ.get("BENCH_PROFILE_WALL") == "1" else "--gil"
    spy = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "py-spy"),
        "record",
        mode,
        "--rate",
        "200",
        "--format",
        "raw",
        "-o",
        path,
        "--pid",
        str(pid),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(1.0)  # attached
    return spy


async def wait_online(broker: PrivateMosquitto) -> None:
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username="central",
        password=PASSWORDS["central"],
        protocol=aiomqtt.ProtocolVersion.V5,
    ) as c:
        await c.subscribe(f"{BASE}/v1/bridge/state", qos=1)
        async with asyncio.timeout(60):
            async for msg in c.messages:
                if json.loads(bytes(msg.payload)).get("state") == "online":  # type: ignore[arg-type]
                    return


async def wait_drained(url: str, limit_s: float = 120.0, *, at_once: bool = False) -> bool:
    """Wait until the gateway published its whole outbox (states and events); with
    ``at_once``, only look once."""
    from gateway.store import outbox

    db = Database(url)
    try:
        deadline = time.monotonic() + limit_s
        while at_once or time.monotonic() < deadline:
            if at_once:
                with db.session(readonly=True) as s:
                    return outbox.count_pending(s) == 0
            with db.session(readonly=True) as s:
                if outbox.count_pending(s) == 0:
                    return True
            await asyncio.sleep(0.2)
        return False
    finally:
        db.dispose()


def count_statements(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """SQL statements (an executemany counts once) per request through the gateway's core
    and listeners: deterministic, unlike the timings on a shared machine."""
    from sqlalchemy import event

    from gateway.compose import build_gateway
    from gateway.config import Settings

    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if args.db == "postgresql":
        url, cleanup = pg_database(args.pg_admin)
    else:
        url = f"sqlite:///{folder / 'bench.db'}"
    try:
        people, visitors = load_site(url, args.site)
        stream = changes(args.count, people, visitors, visitor_cards=args.mix == "all")
        settings = Settings(database={"url": url}, mqtt={"base_topic": BASE})
        gateway = build_gateway(settings, upgrade=False)
        core = gateway.core
        core.load()
        counted = [0]
        show = os.environ.get("BENCH_SHOW_SQL")

        in_batch: collections.Counter[str] = collections.Counter()
        recording = [False]

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            counted[0] += 1
            if show == "batch" and recording[0]:
                in_batch[" ".join(statement.split())[:90]] += 1
            if show and counted[0] - before <= 40 and len(by_kind.get(command.name, ())) == 0:
                log(f"  {command.name}: {' '.join(statement.split())[:110]}")

        event.listen(core.db.engine, "before_cursor_execute", count)
        half = len(stream) // 2
        by_kind: dict[str, list[int]] = {}
        before = 0
        command = stream[0]
        for i, command in enumerate(stream[:half]):
            before = counted[0]
            (outcome,) = core.submit_many([Submission(command, "central-system", f"s-{i}", "mqtt")])
            assert outcome.ok, outcome.error
            by_kind.setdefault(command.name, []).append(counted[0] - before)
        single = sum(sum(v) for v in by_kind.values()) / half
        before = counted[0]
        rest = stream[half:]
        for start in range(0, len(rest), args.batch):
            chunk = rest[start : start + args.batch]
            recording[0] = start + args.batch >= len(rest)  # the last batch
            outcomes = core.submit_many(
                [
                    Submission(c, "central-system", f"b-{half + start + j}", "mqtt")
                    for j, c in enumerate(chunk)
                ]
            )
            assert all(o.ok for o in outcomes)
        batched = (counted[0] - before) / len(rest)
        for text, n in in_batch.most_common():
            log(f"  last batch: {n:4d} x {text}")
        core.db.dispose()
    finally:
        cleanup()
    for kind, values in sorted(by_kind.items()):
        log(f"{kind}: {statistics.mean(values):.1f} statements per request alone")
    return {
        "mode": "statements",
        "db": args.db,
        "requests": args.count,
        "statements_per_request_alone": round(single, 2),
        "statements_per_request_batched": round(batched, 2),
        "batch": args.batch,
        "by_kind_alone": {k: round(statistics.mean(v), 2) for k, v in sorted(by_kind.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--count",
        type=int,
        default=None,
        help="access changes to send (default 20000; with --rate, 30 s worth)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="send at this fixed rate (requests/s) instead of flooding; reports latency",
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--window", type=int, default=1000, help="requests outstanding at most")
    parser.add_argument(
        "--mix",
        choices=["all", "no-visitor-cards"],
        default="all",
        help="request kinds: all, or without visitor card changes and returns (each of which "
        "rebuilds the allow-list of the office controller)",
    )
    parser.add_argument("--batch", type=int, default=200, help="gateway mqtt.max_batch")
    parser.add_argument("--pending", type=int, default=2000, help="gateway mqtt.max_pending")
    parser.add_argument(
        "--pg-admin",
        default=os.environ.get(
            "LOCKGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="admin URL of the PostgreSQL server (a fresh database is created and dropped)",
    )
    parser.add_argument(
        "--profile",
        default=None,
        metavar="FILE",
        help="record the gateway with py-spy (collapsed stacks of the GIL holder) into FILE",
    )
    parser.add_argument(
        "--statements",
        action="store_true",
        help="no broker: apply the changes in-process through the gateway's core (with its "
        "listeners) and count the SQL statements per request, one request per transaction "
        "and --batch per transaction",
    )
    parser.add_argument(
        "--site",
        type=int,
        default=20000,
        help="size the site as for this many changes (N/20 people, N/10 visitor cards)",
    )
    args = parser.parse_args()
    if args.count is None:
        args.count = 20000 if args.rate is None else max(100, int(args.rate * 30))
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate: must be positive")
    if args.count < 100:
        parser.error("--count: at least 100")
    with tempfile.TemporaryDirectory(prefix="lockgate-bench-") as folder:
        if args.statements:
            result = count_statements(args, Path(folder))
        else:
            result = asyncio.run(bench(args, Path(folder)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

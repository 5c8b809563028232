"""Several ``lockgate run --role core`` processes on one PostgreSQL database and one broker,
and a central system flooding them with requests: shared by the failover tests and by
``bench/failover.py``.

The central system behaves as docs/mqtt.md asks (a persistent session of its own, QoS 1),
but never resends: whatever the killed leader had received and not acknowledged must reach
the new leader through the gateway's persistent session at the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
from sqlalchemy import func, select, text

from gateway.bridge.topics import TopicMap
from gateway.store import tables
from gateway.store.database import WRITE_LOCK_KEY, Database
from tests.trial_load import competence, count_store

BASE = "lockgate"
TOPICS = TopicMap(BASE)
LOCKGATE = str(Path(sys.executable).parent / "lockgate")


def lease_row(url: str) -> tuple[str, int] | None:
    db = Database(url)
    try:
        with db.session(readonly=True) as s:
            row = s.execute(
                select(tables.leader_lease.c.holder, tables.leader_lease.c.token)
            ).first()
        return (row.holder, int(row.token)) if row is not None else None
    finally:
        db.dispose()


def steal_lease(url: str, holder: str, seconds: float) -> int:
    """Give the lease to ``holder`` (an instance that does not exist) for ``seconds``, under
    the store's write lock as a standby takes it; the new token."""
    db = Database(url)
    try:
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
            token = conn.execute(
                text(
                    "UPDATE leader_lease SET token = token + 1, holder = :holder, "
                    "expires_at = clock_timestamp() + make_interval(secs => :s) RETURNING token"
                ),
                {"holder": holder, "s": seconds},
            ).scalar_one()
        return int(token)
    finally:
        db.dispose()


def inbox_count(url: str) -> int:
    db = Database(url)
    try:
        with db.session(readonly=True) as s:
            return int(s.execute(select(func.count()).select_from(tables.inbox)).scalar_one())
    finally:
        db.dispose()


class CoreProcess:
    """One ``lockgate run --role core`` process with its own configuration and log."""

    def __init__(
        self,
        folder: Path,
        name: str,
        url: str,
        host: str,
        port: int,
        *,
        lease_s: float,
        renew_s: float,
        sites: bool = False,
        account: tuple[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        extra: str = "",
    ) -> None:
        """``sites``: ``--sites`` (the leader serves the site agents too); ``account``: the
        broker user and password; ``env``: extra environment (the site hub's password);
        ``extra``: more configuration (TOML tables) after the rest."""
        self.name = name
        self.sites = sites
        self.env = {**os.environ, **(env or {})}
        login = (
            f'username = "{account[0]}"\npassword = "{account[1]}"\n' if account is not None else ""
        )
        self.config = folder / f"{name}.toml"
        self.config.write_text(f"""
[database]
url = "{url}"

[mqtt]
host = "{host}"
port = {port}
base_topic = "{BASE}"
client_id = "lockgate-core"
session_expiry_s = 3600
keepalive_s = 5
{login}
[leadership]
lease_s = {lease_s}
renew_s = {renew_s}
lock_timeout_s = {renew_s}
{extra}""")
        self.log_path = folder / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    LOCKGATE,
                    "run",
                    "--role",
                    "core",
                    "--config",
                    str(self.config),
                    "--log-format",
                    "json",
                    *(["--sites"] if self.sites else []),
                ],
                stdout=out,
                stderr=out,
                env=self.env,
            )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if not self.alive:
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    out.append(record)
        return out

    def logged(self, fragment: str) -> int:
        return sum(1 for r in self.records() if fragment in str(r.get("msg", "")))

    def first(self, fragment: str) -> int | None:
        """The position in the log of the first record whose message holds ``fragment``."""
        return next(
            (i for i, r in enumerate(self.records()) if fragment in str(r.get("msg", ""))), None
        )

    def instance(self) -> str | None:
        for r in self.records():
            if r.get("msg") == "lockgate core starting":
                return str(r.get("instance"))
        return None


async def wait_for(check: Any, limit_s: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > limit_s:
            raise AssertionError(f"{what}: not within {limit_s:g} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@dataclass
class Central:
    """The central system: sends requests, collects responses, bridge states and events."""

    host: str
    port: int
    responses: dict[str, list[tuple[float, dict[str, Any]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    states: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    ident: str = field(default_factory=lambda: f"central-{uuid.uuid4().hex[:8]}")
    account: tuple[str, str] | None = None
    """Broker user and password (with the deployed ACL, the user is also the client id)."""

    def __post_init__(self) -> None:
        self.outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self.online = asyncio.Event()

    def send(self, name: str, body: dict[str, Any]) -> str:
        """Queue request ``name`` (``lockgate/v1/request/<name>``); its request id."""
        request_id = str(body["request_id"])
        self.outbox.put_nowait((name, json.dumps(body).encode()))
        return request_id

    async def answer(self, request_id: str, limit_s: float = 20.0) -> dict[str, Any]:
        """The first response to ``request_id``."""
        await wait_for(lambda: request_id in self.responses, limit_s, f"answer to {request_id}")
        return self.responses[request_id][0][1]

    def online_instance(self) -> str | None:
        """The instance of the last retained-or-live ``online`` bridge state."""
        for _, state in reversed(self.states):
            return str(state.get("instance")) if state.get("state") == "online" else None
        return None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    identifier=self.ident,
                    clean_start=False,
                    username=self.account[0] if self.account else None,
                    password=self.account[1] if self.account else None,
                    protocol=aiomqtt.ProtocolVersion.V5,
                    max_inflight_messages=100,
                    timeout=10,
                ) as c:
                    await c.subscribe(
                        [
                            (f"{TOPICS.response_prefix}#", 1),
                            (TOPICS.bridge_state(), 1),
                            (TOPICS.events(), 1),
                        ]
                    )
                    self.online.set()
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._receive(c), name="central-receive")
                        tg.create_task(self._send(c), name="central-send")
                        tg.create_task(_end_when(stop), name="central-stop")
            except* _Stopped:
                pass
            except* (aiomqtt.MqttError, OSError):
                self.online.clear()
                await asyncio.sleep(0.3)

    async def _receive(self, c: aiomqtt.Client) -> None:
        async for message in c.messages:
            now = time.monotonic()
            raw = bytes(message.payload) if isinstance(message.payload, bytes | bytearray) else b""
            if not raw:
                continue
            body = json.loads(raw)
            topic = message.topic.value
            if topic == TOPICS.bridge_state():
                self.states.append((now, body))
            elif topic == TOPICS.events():
                self.events.append((now, body))
            elif body.get("request_id"):
                self.responses[body["request_id"]].append((now, body))

    async def _send(self, c: aiomqtt.Client) -> None:
        while True:
            name, payload = await self.outbox.get()
            try:
                await c.publish(f"{BASE}/v1/request/{name}", payload, qos=1)
            except BaseException:
                # Not acknowledged by the broker (an error, or the connection went while
                # waiting for the PUBACK and this task was cancelled): QoS 1 sends it again.
                self.outbox.put_nowait((name, payload))
                raise


class _Stopped(Exception):
    pass


async def _end_when(stop: asyncio.Event) -> None:
    await stop.wait()
    raise _Stopped


@dataclass
class Outcome:
    """What one failover trial counted."""

    requests: int
    lost: int
    doubled: int
    unanswered: int
    mismatched: int
    takeover_s: float | None
    """From the failure to the first response sent by the new leader."""
    online_s: float | None
    """From the failure to the new leader's ``online`` bridge state."""
    new_leader: str | None
    resent: int = 0
    """Requests sent again because no response came within ``resend_after_s``."""

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


async def flood_with_failure(
    url: str,
    central: Central,
    n: int,
    fail: Any,
    *,
    old_leader: str,
    rate_per_s: float = 400.0,
    settle_s: float = 40.0,
    resend_after_s: float | None = None,
) -> Outcome:
    """Send ``n`` requests at ``rate_per_s``; once a quarter are answered call ``fail()``
    (returns at once); wait until every request is answered (at most ``settle_s`` after the
    failure) and count. With ``resend_after_s`` the central system behaves as docs/mqtt.md
    asks of it when the broker itself may lose messages (a broker restart): once everything
    was sent, a request without a response after that long is sent again, same request id."""
    trial = f"t{uuid.uuid4().hex[:8]}"
    payloads = {f"{trial}-{i}": competence(trial, i) for i in range(n)}

    async def feed() -> None:
        for payload in payloads.values():
            central.outbox.put_nowait(("competence", payload))
            await asyncio.sleep(1.0 / rate_per_s)

    feeder = asyncio.create_task(feed(), name="central-feed")
    try:
        await wait_for(
            lambda: sum(r in central.responses for r in payloads) >= n // 4,
            60,
            "a quarter of the requests answered",
        )
        failed_at = time.monotonic()
        fail()
        resent = await _settle(central, payloads, feeder, settle_s, resend_after_s)
        await feeder
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
    await asyncio.sleep(0.5)  # late repeats
    online_at = next(
        (
            t
            for t, s in central.states
            if t > failed_at and s.get("state") == "online" and s.get("instance") != old_leader
        ),
        None,
    )
    new_leader = next(
        (
            str(s.get("instance"))
            for t, s in central.states
            if t > failed_at and s.get("state") == "online" and s.get("instance") != old_leader
        ),
        None,
    )
    first_new = (
        min(
            (t for answers in central.responses.values() for t, _ in answers if t >= online_at),
            default=None,
        )
        if online_at is not None
        else None
    )
    ids, applied = count_store(url, trial)
    unanswered = [r for r in payloads if r not in central.responses]
    ok_not_stored = [
        r
        for r in payloads
        if any(a["status"] == "ok" for _, a in central.responses.get(r, [])) and r not in ids
    ]
    return Outcome(
        requests=n,
        lost=len(ok_not_stored) + len([r for r in unanswered if r not in ids]),
        doubled=sum(1 for c in applied.values() if c > 1),
        unanswered=len(unanswered),
        mismatched=sum(
            1
            for r in payloads
            if len({json.dumps(a, sort_keys=True) for _, a in central.responses.get(r, [])}) > 1
        ),
        takeover_s=round(first_new - failed_at, 3) if first_new is not None else None,
        online_s=round(online_at - failed_at, 3) if online_at is not None else None,
        new_leader=new_leader,
        resent=resent,
    )


async def _settle(
    central: Central,
    payloads: dict[str, bytes],
    feeder: asyncio.Task[None],
    settle_s: float,
    resend_after_s: float | None,
) -> int:
    """Wait until every request is answered (at most ``settle_s``), resending as
    :func:`flood_with_failure` says; how many were sent again."""
    deadline = time.monotonic() + settle_s
    next_resend = None
    resent = 0
    while time.monotonic() < deadline:
        if all(r in central.responses for r in payloads):
            break
        if resend_after_s is not None and feeder.done():
            now = time.monotonic()
            if next_resend is None:
                next_resend = now + resend_after_s
            elif now >= next_resend:
                for r, payload in payloads.items():
                    if r not in central.responses:
                        central.outbox.put_nowait(("competence", payload))
                        resent += 1
                next_resend = now + resend_after_s
        await asyncio.sleep(0.05)
    return resent

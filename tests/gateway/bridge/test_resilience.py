"""Failures: the broker restarting in the middle of a stream, the gateway killed with SIGKILL
right after sending responses (``lockgate run`` as a subprocess), its last will, and
``lockgate run`` refusing to start."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import func, select

from gateway.commands import model as m
from gateway.config import load_settings
from gateway.demo.broker import PrivateMosquitto
from gateway.domain.facts import Competence
from gateway.store import tables
from gateway.store.database import Database
from tests import sample
from tests.gateway.bridge.harness import (
    body,
    central,
    poll_store_until,
    register_system_operators,
    running_gateway,
    settings_for,
)

TODAY = date.today()
LOCKGATE = str(Path(sys.executable).parent / "lockgate")


def competence(i: int) -> m.PutCompetence:
    return m.PutCompetence(
        competence=Competence(
            person_id="p-anna", code=f"K{i:04d}", valid_until=TODAY + timedelta(days=100 + i)
        )
    )


def applied(db: Database) -> dict[str, int]:
    """Per competence code: how many times a put of it was applied (journal entries)."""
    with db.session(readonly=True) as s:
        rows = s.execute(
            select(tables.fact_journal.c.key, func.count())
            .where(tables.fact_journal.c.kind == "Competence")
            .group_by(tables.fact_journal.c.key)
        ).all()
    return {json.dumps(list(key)): n for key, n in rows}


def inbox_ids(db: Database) -> set[str]:
    with db.session(readonly=True) as s:
        return set(s.execute(select(tables.inbox.c.request_id)).scalars())


@pytest.mark.slow
async def test_no_accepted_request_is_lost_when_the_broker_restarts_mid_stream(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/g.db", broker)
    accepted: list[str] = []
    async with running_gateway(settings) as gw:
        async with central(broker, gw.base) as c:
            for i, command in enumerate(sample.sample_commands(TODAY)):
                assert (await c.request(command, f"s-{i}"))["status"] == "ok"

        async def stream(client: aiomqtt.Client, numbers: range) -> None:
            for i in numbers:
                await client.publish(
                    f"{gw.base}/v1/request/competence",
                    json.dumps(body(competence(i), f"k-{i}")),
                    qos=1,
                )
                accepted.append(f"k-{i}")  # the broker acknowledged it

        sender = aiomqtt.Client(
            broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5, timeout=1
        )
        async with sender:
            gone = asyncio.ensure_future(anext(sender.messages))  # sees the connection end
            await stream(sender, range(200))
            broker.restart()  # while the gateway is still working through the stream
            with pytest.raises(aiomqtt.MqttError):
                await stream(sender, range(200, 400))
            with pytest.raises(aiomqtt.MqttError):
                await gone
        async with aiomqtt.Client(
            broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5
        ) as again:
            await stream(again, range(400, 450))
        await poll_store_until(lambda: set(accepted) <= inbox_ids(gw.gateway.db), timeout=30)
        counts = applied(gw.gateway.db)
        assert gw.bridge.connections >= 2
    assert all(n == 1 for n in counts.values()), "no request applied twice"
    assert len(counts) >= len(accepted) + 2  # the two competences of the sample story


# --------------------------------------------------------------------------- lockgate run


def write_config(folder: Path, broker: PrivateMosquitto, base: str) -> Path:
    config = folder / "lockgate.toml"
    config.write_text(
        f"""
[database]
url = "sqlite:///{folder / "gateway.db"}"

[mqtt]
host = "{broker.host}"
port = {broker.port}
base_topic = "{base}"
client_id = "gw-{base}"
session_expiry_s = 600
keepalive_s = 5
max_batch = 50
"""
    )
    return config


@contextmanager
def lockgate_run(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [LOCKGATE, "run", "--config", str(config), "--log-format", "json"],
            stdout=out,
            stderr=out,
            cwd=config.parent,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def bridge_states(c: Any) -> list[str]:
    return [json.loads(p)["state"] for p, _ in c.on("v1/bridge/state") if p]


@pytest.mark.slow
async def test_a_killed_gateway_loses_no_acknowledged_change_and_applies_none_twice(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    base = f"t{uuid.uuid4().hex[:10]}"
    config = write_config(tmp_path, broker, base)
    register_system_operators(load_settings(config))
    log = tmp_path / "gateway.log"
    stream = [f"k-{i}" for i in range(300)]
    async with central(broker, base) as c:
        with lockgate_run(config, log) as gateway:
            await c.wait_for(lambda: bridge_states(c)[-1:] == ["online"], timeout=30)
            for i, command in enumerate(sample.sample_commands(TODAY)):
                assert (await c.request(command, f"s-{i}"))["status"] == "ok"
            for i, rid in enumerate(stream):
                await c.publish("competence", body(competence(i), rid))
            await c.wait_for(lambda: sum(r in c.responses for r in stream) >= 30)
            os.kill(gateway.pid, signal.SIGKILL)
            gateway.wait(10)
            before_kill = {r: list(c.responses[r]) for r in stream if r in c.responses}
            assert len(before_kill) < len(stream), "killed in the middle of the stream"
            # The broker announces the death with the gateway's last will.
            await c.wait_for(lambda: bridge_states(c)[-1:] == ["offline"])
        with lockgate_run(config, log) as gateway:
            await c.wait_for(lambda: all(r in c.responses for r in stream), timeout=30)
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(15) == 0
        await c.wait_for(lambda: bridge_states(c)[-1:] == ["offline"])
    assert bridge_states(c).count("online") == 2
    for rid in stream:
        answers = c.responses[rid]
        assert all(a == answers[0] for a in answers), "a repeated response is the same response"
        assert answers[0]["status"] == "ok", answers[0]
    for rid, answers in before_kill.items():
        assert answers[0] == c.responses[rid][0]
    db = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        assert set(stream) <= inbox_ids(db), "every acknowledged change is in the store"
        counts = applied(db)
        assert len(counts) == len(stream) + 2
        assert set(counts.values()) == {1}, "none applied twice"
    finally:
        db.dispose()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    starts = [x for x in lines if x["msg"] == "lockgate starting"]
    assert len(starts) == 2
    assert starts[0]["database"].endswith("gateway.db")
    assert starts[0]["broker"] == f"mqtt://{broker.host}:{broker.port}"
    assert any(x["msg"] == "lockgate stopped" for x in lines)
    for word in ("Anna", "Lindqvist", "ID06AN0001", "+4670"):
        assert word not in log.read_text(), "no personal data in the logs"


def test_run_exits_non_zero_with_a_log_line_on_fatal_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[mqtt]\nport = "not a port"\n')
    done = subprocess.run([LOCKGATE, "run", "--config", str(bad)], capture_output=True, timeout=60)
    assert done.returncode == 2
    assert b"level=error" in done.stderr and b"mqtt.port" in done.stderr
    unreachable = tmp_path / "pg.toml"
    unreachable.write_text(
        '[database]\nurl = "postgresql://nobody@127.0.0.1:1/none"\n[mqtt]\nenabled = false\n'
    )
    done = subprocess.run(
        [LOCKGATE, "run", "--config", str(unreachable), "--log-format", "json"],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 1
    last = json.loads(done.stderr.decode().strip().splitlines()[-1])
    assert last["level"] == "error"
    assert last["msg"].startswith("lockgate could not start")

"""docs/mqtt.md is true: its walkthrough, run as written (configuration, commands, the gateway,
``mosquitto_rr``) on the private broker, gives the answer it shows, and every request of its
Examples gets exactly the answer printed under it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from gateway.demo.broker import PrivateMosquitto
from tests.conftest import _unavailable
from tests.gateway.bridge.harness import WAIT_S, central

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "mqtt.md"
BIN = Path(sys.executable).parent


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def fenced(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def examples(text: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(topic, payload, answer) of every example: indented blocks of ``topic``, ``payload``
    and ``answer`` lines, continuation lines joined with one space."""
    found = []
    for block in re.findall(r"((?:^    \S.*\n|^            .*\n)+)", text, flags=re.MULTILINE):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith("            "):
                fields[key] += " " + line.strip()
            else:
                key, _, value = line.strip().partition(" ")
                fields[key] = value.strip()
        if set(fields) == {"topic", "payload", "answer"}:
            found.append(
                (fields["topic"], json.loads(fields["payload"]), json.loads(fields["answer"]))
            )
    return found


def local(command: str, broker: PrivateMosquitto) -> str:
    """A documented command pointed at the private broker."""
    return command.replace("localhost", broker.host).replace("1883", str(broker.port))


async def shell(script: str, cwd: Path) -> str:
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        script,
        cwd=cwd,
        env=_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        out, _ = await proc.communicate()
    assert proc.returncode == 0, (script, out.decode())
    return out.decode()


def _env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    return {**keep, "PATH": f"{BIN}:/usr/bin:/bin", "COLUMNS": "200"}


async def test_the_walkthrough_and_every_example_give_the_documented_answers(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    if shutil.which("mosquitto_rr") is None:
        _unavailable("mosquitto_rr (mosquitto-clients) runs the documented commands")
    text = DOC.read_text(encoding="utf-8")
    walk = fenced(section(text, "Your first requests"))
    kinds = [lang for lang, _ in walk]
    assert kinds[:5] == ["toml", "sh", "sh", "sh", "json"], kinds
    (_, config), (_, setup), (_, run), (_, request), (_, answer) = walk[:5]
    assert "lockgate.toml" in config and run.strip().endswith("run")
    (tmp_path / "lockgate.toml").write_text(local(config, broker), encoding="utf-8")
    await shell(local(setup, broker), tmp_path)

    async with central(broker, "lockgate") as c:
        gateway = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            f"exec {local(run, broker).strip()}",
            cwd=tmp_path,
            env=_env(),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await c.wait_for(
                lambda: any(
                    json.loads(p).get("state") == "online" for p, _ in c.on("v1/bridge/state") if p
                ),
                timeout=WAIT_S * 2,
            )
            printed = await shell(local(request, broker), tmp_path)
            assert json.loads(printed) == json.loads(answer)

            shown = examples(section(text, "Examples"))
            names = {topic.rsplit("/", 1)[1] for topic, _, _ in shown}
            master = {
                "organisation",
                "person",
                "employment",
                "space",
                "assignment",
                "application",
                "key_order",
                "delivery",
            }
            assert master <= names, master - names
            assert len(shown) >= 15
            for i, (topic, payload, expected) in enumerate(shown):
                assert topic.startswith("lockgate/v1/request/"), topic
                correlation = f"doc-{i}".encode()
                await c.publish(topic.rsplit("/", 1)[1], payload, correlation=correlation)
                got = await c.correlated(correlation)
                assert got == expected, (topic, payload, got)
            answers = [expected for _, _, expected in shown]
            illustrations = re.findall(
                r"^    (\{\"request_id\".*?)\n\n",
                section(text, "Requests"),
                flags=re.MULTILINE | re.DOTALL,
            )
            assert len(illustrations) == 2
            for block in illustrations:
                flat = json.loads(" ".join(line.strip() for line in block.splitlines()))
                assert flat in answers, flat
        finally:
            if gateway.returncode is None:
                gateway.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(20):
                        await gateway.wait()
                except TimeoutError:
                    gateway.kill()
                    await gateway.wait()
        assert gateway.stderr is not None
        log = (await gateway.stderr.read()).decode()
        assert "Traceback" not in log, log

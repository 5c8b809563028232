"""``lockgate demo`` tells the whole story on the simulated site and says whether it held."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

LOCKGATE = str(Path(sys.executable).with_name("lockgate"))


def run_once(tmp_path: Path, *extra: str) -> tuple[dict[str, object], str]:
    proc = subprocess.run(
        [LOCKGATE, "demo", "--once", "--folder", str(tmp_path / "demo"), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "120"},
    )
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr
    summary = json.loads(lines[-1])
    assert proc.returncode == (0 if summary["ok"] else 1), proc.stderr
    return summary, proc.stdout


@pytest.mark.broker
def test_the_story_holds_with_mqtt(tmp_path: Path, mosquitto: object) -> None:
    summary, out = run_once(tmp_path)
    assert summary["ok"] is True, out[-3000:]
    assert summary["failed"] == []
    assert summary["steps"] == 11
    assert "through MQTT" in out
    assert (tmp_path / "demo" / "receipts" / "receipt-100000001.pdf").read_bytes()[:4] == b"%PDF"


def test_the_story_holds_without_mqtt(tmp_path: Path) -> None:
    summary, out = run_once(tmp_path, "--no-mqtt")
    assert summary["ok"] is True, out[-3000:]
    assert "the core (no MQTT broker)" in out


BARE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""A PATH without the virtual environment, as in a shell after ``make demo``."""


def test_the_interactive_demo_keeps_running_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    """...and every lockgate command it suggests works as printed from a shell whose PATH
    lacks the virtual environment."""
    env = {**os.environ, "PATH": BARE_PATH, "COLUMNS": "400"}
    proc = subprocess.Popen(
        [LOCKGATE, "demo", "--no-mqtt", "--folder", str(tmp_path / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        suggested: list[str] = []
        console_url = ""
        trying = False
        deadline = time.monotonic() + 90
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("Web console: "):
                console_url = line.split()[2]
            if "keep running. Try:" in line:
                trying = True
            elif "Ctrl-C stops everything" in line or time.monotonic() > deadline:
                break
            elif trying and line.startswith("  ") and line.split()[0].endswith("lockgate"):
                suggested.append(line.strip())
        assert len(suggested) == 6, suggested
        assert all(c.startswith(LOCKGATE) for c in suggested)
        for command in suggested:
            reply = subprocess.run(
                ["/bin/sh", "-c", command], capture_output=True, text=True, timeout=60, env=env
            )
            assert reply.returncode == 0, f"{command}: {reply.stderr}"
            if " visit " in command:
                assert json.loads(reply.stdout)["granted"] is True
        assert console_url.startswith("http://127.0.0.1:"), "the demo prints the console's URL"
        with httpx.Client(base_url=console_url, timeout=10) as web:
            signed = web.post(
                "login", data={"operator": "rita.resepsjonist", "password": "lockgate-demo"}
            )
            assert signed.status_code == 303, signed.text
            assert "Active visitor cards" in web.get("reception").text
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert json.loads(rest.strip().splitlines()[-1])["ok"] is True

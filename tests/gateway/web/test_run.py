"""``lockgate run`` with ``web.enabled`` serves the console, the probes and the metrics, and
stops on SIGTERM; a web address in use stops it from starting, with the option named."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

LOCKGATE = str(Path(sys.executable).parent / "lockgate")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "lockgate.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "run.db"}"\n'
        "[mqtt]\nenabled = false\n"
        f'[web]\nenabled = true\naddress = "127.0.0.1:{port}"\n'
    )
    return config


@pytest.mark.slow
def test_lockgate_run_serves_the_console(tmp_path: Path) -> None:
    port = _free_port()
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        [LOCKGATE, "run", "--config", str(_config(tmp_path, port))], stderr=log, stdout=log
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=base, timeout=5) as c:
            while True:
                try:
                    r = c.get("/healthz")
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, (tmp_path / "run.log").read_text()
                    assert time.monotonic() < deadline, "the console did not come up"
                    time.sleep(0.1)
            assert r.json() == {"status": "ok"}
            ready = c.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"]["bridge"] == "off"
            assert "lockgate_sync_jobs_pending" in c.get("/metrics").text
            login = c.get("/login")
            assert login.status_code == 200 and 'name="password"' in login.text
            assert c.get("/static/htmx.min.js").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        log.close()
    assert code == 0, (tmp_path / "run.log").read_text()


@pytest.mark.slow
def test_a_web_address_in_use_stops_the_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [LOCKGATE, "run", "--config", str(_config(tmp_path, port))],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert "web.address" in done.stderr and str(port) in done.stderr

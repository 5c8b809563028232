"""Site agents as separate processes (``lockgate agent``), for the process tests and
bench/sites.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def agent_config(
    path: Path,
    host: str,
    port: int,
    controllers: Mapping[str, Mapping[str, Any]],
    *,
    username: str | None = None,
    stations: Mapping[str, Mapping[str, Any]] | None = None,
    confirm_wait_s: float = 0.0,
) -> Path:
    """Write the TOML configuration of an agent serving ``controllers`` (id -> options) and
    the wall-mounted serial key ``stations`` (id -> options)."""
    lines = [
        "[mqtt]",
        f"host = {_toml_value(host)}",
        f"port = {port}",
        "keepalive_s = 5",
        *([f"username = {_toml_value(username)}"] if username else []),
        "",
        "[sync]",
        "retry_initial_s = 0.1",
        "retry_max_s = 1.0",
        "tick_s = 0.5",
        f"confirm_wait_s = {confirm_wait_s}",
        "",
    ]
    for cid, options in controllers.items():
        lines += [
            "[[controllers]]",
            f"id = {_toml_value(cid)}",
            'driver = "modbus-door"',
            f"options = {_toml_value(dict(options))}",
            "",
        ]
    for sid, options in (stations or {}).items():
        lines += [
            "[[stations]]",
            f"id = {_toml_value(sid)}",
            'driver = "serial-station"',
            f"options = {_toml_value(dict(options))}",
            "",
        ]
    path.write_text("\n".join(lines))
    return path


class AgentProcess:
    """``lockgate agent --site SITE`` as a child process, logging to a file."""

    def __init__(
        self, site: str, config: Path, state: Path, log: Path, *, password: str | None = None
    ) -> None:
        """``password``: the agent's password at the broker (given in the environment)."""
        self.site = site
        self.password = password
        self.config = config
        self.state = state
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "LOCKGATE_CONFIG": ""}
        env.pop("LOCKGATE_CONFIG")
        if self.password is not None:
            env["LOCKGATE_MQTT__PASSWORD"] = self.password
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway.cli",
                    "agent",
                    "--site",
                    self.site,
                    "--config",
                    str(self.config),
                    "--state",
                    str(self.state),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def kill(self) -> None:
        """SIGKILL: no goodbye, nothing flushed but what was committed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                return None
        return proc.returncode

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

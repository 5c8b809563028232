"""A private Mosquitto broker on a free port, with its own configuration and data folder.

Used by the test suite and by ``lockgate demo`` so that neither depends on a broker
configured by hand. The broker runs as a child process and is stopped with the object.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any


class BrokerUnavailable(RuntimeError):
    """The mosquitto binary is missing or the broker did not start."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str | None:
    """Path of the mosquitto binary, searching PATH and the usual sbin folders."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class PrivateMosquitto:
    """A Mosquitto child process listening on ``127.0.0.1:<free port>``.

    Persistence is on (saved every second, and at a graceful stop), anonymous clients are
    allowed: it is bound to loopback only. ``restart()`` keeps the port and the persisted
    sessions.
    """

    def __init__(self, *, data_dir: Path | None = None, port: int | None = None) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise BrokerUnavailable("the mosquitto binary is not installed (apt install mosquitto)")
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._own_dir = data_dir is None
        self.dir = (
            Path(tempfile.mkdtemp(prefix="lockgate-mosquitto-")) if data_dir is None else data_dir
        )
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.dir / "mosquitto.conf"
        self.log_path = self.dir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def _write_config(self) -> None:
        self.config_path.write_text(
            "\n".join(
                [
                    f"listener {self.port} {self.host}",
                    "allow_anonymous true",
                    "persistence true",
                    f"persistence_location {self.dir}/",
                    "autosave_interval 1",
                    "autosave_on_changes false",
                    "max_queued_messages 100000",
                    "max_inflight_messages 100",
                    "set_tcp_nodelay true",
                    "persistent_client_expiration 1h",
                    f"log_dest file {self.log_path}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    # Started as root, mosquitto would switch to the "mosquitto" user, which
                    # cannot write to this private folder: its persistence would silently fail.
                    *(["user root"] if os.geteuid() == 0 else []),
                    "",
                ]
            )
        )

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start the broker and wait until it accepts connections."""
        self._write_config()
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise BrokerUnavailable(f"mosquitto exited at start: {err.strip()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerUnavailable(f"mosquitto did not listen on {self.host}:{self.port}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker gracefully (it saves its persistence file)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None

    def kill(self) -> None:
        """Kill the broker with SIGKILL (no clean shutdown)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._proc is not None and self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PrivateMosquitto:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


def adjusted_config(conf: str, folder: Path, port: int) -> str:
    """A production Mosquitto configuration (``deploy/mosquitto/mosquitto.conf``) with the
    port, folders and file paths of a private run in ``folder``."""
    out = []
    for line in conf.splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            line = f"listener {port} 127.0.0.1"
        elif key == "persistence_location":
            line = f"persistence_location {folder}/"
        elif key == "password_file":
            line = f"password_file {folder / 'passwd'}"
        elif key == "acl_file":
            line = f"acl_file {folder / 'acl'}"
        elif key == "log_dest":
            line = f"log_dest file {folder / 'mosquitto.log'}"
        elif key == "pid_file":
            continue
        out.append(line)
    if os.geteuid() == 0:
        out.append("user root")  # else the broker drops to a user that cannot write here
    return "\n".join(out) + "\n"


class DeployedMosquitto(PrivateMosquitto):
    """A private broker running a production configuration folder (``mosquitto.conf`` and
    ``acl``, as in ``deploy/mosquitto``) with a password file of the given users."""

    def __init__(self, config_dir: Path, passwords: dict[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_dir = config_dir
        self.passwords = passwords

    def _write_config(self) -> None:
        conf = (self.config_dir / "mosquitto.conf").read_text()
        shutil.copy(self.config_dir / "acl", self.dir / "acl")
        passwd = self.dir / "passwd"
        passwd.write_text("")
        for user, password in self.passwords.items():
            subprocess.run(
                ["mosquitto_passwd", "-b", str(passwd), user, password],
                check=True,
                capture_output=True,
            )
        self.config_path.write_text(adjusted_config(conf, self.dir, self.port))

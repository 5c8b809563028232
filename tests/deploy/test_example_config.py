"""The example configurations of deploy/ are valid, their devices' options are accepted by
their drivers, and ``lockgate run`` starts with each of them against the test broker and a
test database (only the database URL, the broker address and the topic changed), announces
itself online, and stops cleanly on SIGTERM.

deploy/lockgate-site.toml is the test bench's configuration; deploy/lockgate.toml, the
production one, is tested as well once it exists (it comes with the broker configuration)."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.base import DeviceConfig
from drivers.registry import load_driver
from gateway.config import load_settings
from gateway.demo.broker import PrivateMosquitto
from tests.deploy.units import DEPLOY, VENV_BIN, mosquitto_sub, process_env

SITE = DEPLOY / "lockgate-site.toml"
PRODUCTION = DEPLOY / "lockgate.toml"
EXAMPLES = [p for p in (SITE, PRODUCTION) if p.is_file()]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOCKGATE_CONFIG", "LOCKGATE_DATABASE__URL", "LOCKGATE_STATIONS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("LOCKGATE_CONTROLLERS", raising=False)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_config_validates(path: Path) -> None:
    settings = load_settings(path)
    for device in [*settings.stations, *settings.controllers]:
        # Builds the driver from the options (nothing is opened): unknown options, wrong
        # types and missing required ones are refused here.
        load_driver(DeviceConfig(device.id, device.driver, dict(device.options)))


def test_site_config_describes_the_demo_site() -> None:
    from simulators.site import DEFAULT_SITE, load_site

    spec = load_site(DEFAULT_SITE)
    settings = load_settings(SITE)
    assert {s.id for s in settings.stations} == {s.id for s in spec.stations}
    assert {c.id for c in settings.controllers} == {c.id for c in spec.controllers}
    # Desk stations are operated at a terminal, wall stations served by the gateway.
    mounting = {s.id: s.mounting for s in spec.stations}
    assert {s.id: s.operated for s in settings.stations} == {
        sid: m == "desk" for sid, m in mounting.items()
    }
    assert settings.site.timezone == spec.timezone
    assert settings.mqtt.client_id != load_settings().mqtt.client_id


def test_secrets_are_not_in_the_files() -> None:
    for path in EXAMPLES:
        settings = load_settings(path)
        assert settings.mqtt.password is None, f"{path.name}: the password belongs in the env"


# ------------------------------------------------------------------ lockgate run


class Run:
    """``lockgate run --config FILE`` as a child process, its log in a file."""

    def __init__(self, config: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "lockgate"), "run", "--config", str(config)],
                env=process_env(env),
                cwd=log.parent,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text():
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.text()}"
            assert time.monotonic() < deadline, f"no {text!r}:\n{self.text()}"
            time.sleep(0.05)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


Starter = Callable[[Path, str], tuple[Run, str]]


@pytest.fixture
def run_config(broker: PrivateMosquitto, tmp_path: Path) -> Iterator[Starter]:
    started: list[Run] = []

    def start(config: Path, database_url: str) -> tuple[Run, str]:
        topic = f"example{uuid.uuid4().hex[:8]}"
        env = {
            "LOCKGATE_DATABASE__URL": database_url,
            "LOCKGATE_MQTT__HOST": broker.host,
            "LOCKGATE_MQTT__PORT": str(broker.port),
            "LOCKGATE_MQTT__BASE_TOPIC": topic,
            "LOCKGATE_MQTT__PASSWORD": "not-checked-by-the-test-broker",
        }
        run = Run(config, env, tmp_path / f"{config.stem}.log")
        started.append(run)
        return run, topic

    yield start
    for run in started:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(timeout=5)


def bridge_state(broker: PrivateMosquitto, topic: str) -> str:
    command = [mosquitto_sub(), "-h", broker.host, "-p", str(broker.port)]
    done = subprocess.run(
        [*command, "-t", f"{topic}/v1/bridge/state", "-C", "1", "-W", "5"],
        capture_output=True,
        text=True,
        timeout=15,
    )
    return done.stdout.replace(" ", "").strip()


def start_and_stop(run_config: Starter, broker: PrivateMosquitto, config: Path, url: str) -> str:
    run, topic = run_config(config, url)
    run.wait_for("lockgate running")
    deadline = time.monotonic() + 20
    while '"state":"online"' not in bridge_state(broker, topic):
        assert time.monotonic() < deadline, run.text()
    assert run.stop() == 0, run.text()
    assert '"state":"offline"' in bridge_state(broker, topic)
    log = run.text()
    assert "lockgate stopped" in log
    assert "level=error" not in log and "level=critical" not in log, log
    return log


RUNS = [
    pytest.param(path, marks=pytest.mark.postgres, id=path.name)
    if path == PRODUCTION
    else pytest.param(path, id=path.name)
    for path in EXAMPLES
]


@pytest.mark.parametrize("path", RUNS)
def test_lockgate_run_starts_and_stops_with_the_example_config(
    path: Path,
    run_config: Starter,
    broker: PrivateMosquitto,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    # The site config runs on SQLite, the production one on PostgreSQL as it says.
    if load_settings(path).database.url.startswith("postgresql"):
        url = request.getfixturevalue("pg_url")
    else:
        url = f"sqlite:///{tmp_path}/example.db"
    log = start_and_stop(run_config, broker, path, url)
    assert f"broker=mqtt://{broker.host}:{broker.port}" in log
    assert "not-checked" not in log  # the broker password is never logged

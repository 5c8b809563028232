"""deploy/compose.yaml and deploy/Dockerfile: every file they reference exists, services,
profiles and volumes are consistent with each other and with the broker and gateway
configurations they mount, and the `sim` service's start script really runs a simulated
site and a gateway configured for it (there is no container engine here: the script runs on
this machine with the container's paths moved into a test folder)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import load_settings
from gateway.demo.broker import PrivateMosquitto
from tests.deploy.units import DEPLOY, ROOT, mosquitto_sub, process_env

COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(source, target, mode) of every short-syntax volume entry."""
    out = []
    for entry in service.get("volumes", []):
        assert isinstance(entry, str), f"long volume syntax is not used here: {entry!r}"
        source, target, *mode = entry.split(":")
        out.append((source, target, mode[0] if mode else "rw"))
    return out


def bind_source(source: str) -> Path | None:
    """The host path of a bind mount (relative to the compose file), None for a volume."""
    if source.startswith((".", "/")):
        return (DEPLOY / source).resolve()
    return None


def mosquitto_conf() -> dict[str, list[str]]:
    conf: dict[str, list[str]] = {}
    for line in (DEPLOY / "mosquitto" / "mosquitto.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            conf.setdefault(key, []).append(value.strip())
    return conf


def script(service: dict[str, Any]) -> str:
    command = service["command"]
    assert isinstance(command, list) and len(command) == 1
    return str(command[0])


# ------------------------------------------------------------------ structure


def test_services_and_profiles(compose: dict[str, Any]) -> None:
    s = services(compose)
    assert set(s) == {"mosquitto", "postgres", "gateway", "sim"}
    assert s["sim"]["profiles"] == ["sim"]
    for name in ("mosquitto", "postgres", "gateway"):
        assert "profiles" not in s[name], f"{name} must start without a profile"


def test_every_referenced_file_exists(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for source, _, _ in mounts(service):
            path = bind_source(source)
            if path is not None:
                assert path.is_file(), f"{name}: {source} does not exist"
        build = service.get("build")
        if build is not None:
            context = (DEPLOY / build["context"]).resolve()
            assert context == ROOT
            assert (context / build["dockerfile"]).resolve() == DOCKERFILE


def test_named_volumes_are_declared_and_used(compose: dict[str, Any]) -> None:
    used = {
        source
        for service in services(compose).values()
        for source, _, _ in mounts(service)
        if bind_source(source) is None
    }
    assert used == set(compose["volumes"])


def test_postgres_has_a_volume_and_a_healthcheck_the_gateway_waits_for(
    compose: dict[str, Any],
) -> None:
    s = services(compose)
    pg = s["postgres"]
    assert ("postgres-data", "/var/lib/postgresql/data", "rw") in mounts(pg)
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert s["gateway"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    url = s["gateway"]["environment"]["LOCKGATE_DATABASE__URL"]
    user, db = pg["environment"]["POSTGRES_USER"], pg["environment"]["POSTGRES_DB"]
    assert re.fullmatch(rf"postgresql://{user}:\$\{{POSTGRES_PASSWORD[^}}]*\}}@postgres/{db}", url)


def test_mosquitto_runs_the_production_configuration(compose: dict[str, Any]) -> None:
    broker = services(compose)["mosquitto"]
    conf = mosquitto_conf()
    targets = {t: s for s, t, _ in mounts(broker)}
    start = script(broker)
    # The configuration files of deploy/mosquitto, read-only, where mosquitto.conf says.
    assert targets["/etc/mosquitto/mosquitto.conf"] == "./mosquitto/mosquitto.conf"
    assert "exec mosquitto -c /etc/mosquitto/mosquitto.conf" in start
    (acl,) = conf["acl_file"]
    assert targets[acl] == "./mosquitto/acl"
    # The password file is written at start for both accounts of the ACL.
    (passwd,) = conf["password_file"]
    assert f"mosquitto_passwd -c -b {passwd} lockgate" in start
    assert f"mosquitto_passwd -b {passwd} central" in start
    # Persistence and the log survive a new container; the pid file's folder is created.
    (persistence,) = conf["persistence_location"]
    assert persistence.rstrip("/") in targets
    (log,) = conf["log_dest"]
    assert str(Path(log.removeprefix("file ")).parent) in targets
    (pid,) = conf["pid_file"]
    assert str(Path(pid).parent) in start.split("\n")[0]


def test_gateway_reaches_the_loopback_only_broker(compose: dict[str, Any]) -> None:
    s = services(compose)
    conf = mosquitto_conf()
    (listener,) = conf["listener"]
    port, host = listener.split()
    for name, config in (("gateway", "lockgate.toml"), ("sim", "lockgate-site.toml")):
        assert s[name]["network_mode"] == "service:mosquitto"
        settings = tomllib.loads((DEPLOY / config).read_text())
        assert (settings["mqtt"]["host"], settings["mqtt"]["port"]) == (host, int(port))
        assert settings["mqtt"]["username"] == "lockgate"
        assert "LOCKGATE_MQTT__PASSWORD" in s[name]["environment"]


def test_gateway_mounts_the_config_its_command_names(compose: dict[str, Any]) -> None:
    gw = services(compose)["gateway"]
    command = gw["command"]
    config = command[command.index("--config") + 1]
    assert (("./lockgate.toml", config, "ro")) in mounts(gw)
    # The image's default command is the same.
    assert f'CMD ["run", "--config", "{config}"]' in DOCKERFILE.read_text()


def test_gateway_environment_names_real_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in services(compose)["gateway"]["environment"].items():
        monkeypatch.setenv(name, re.sub(r"\$\{[^}]*\}", "secret", value))
    settings = load_settings(DEPLOY / "lockgate.toml")
    assert settings.database.url == "postgresql://lockgate:secret@postgres/lockgate"
    assert settings.mqtt.password == "secret"


def test_secrets_come_from_the_env_file(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert used == {"POSTGRES_PASSWORD", "LOCKGATE_MQTT_PASSWORD", "CENTRAL_MQTT_PASSWORD"}
    header = text.split("\nname:")[0]
    for variable in used:
        assert f"{variable}=" in header, f"{variable} is not explained at the top"


# ------------------------------------------------------------------ the image


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_builds_lockgate_on_python_slim_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert froms and all(f.split()[0] == "python:3.11-slim" for f in froms)
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert "pip install ." in runs
    users = [rest for word, rest in instructions if word == "USER"]
    assert users == ["lockgate"]
    assert ("ENTRYPOINT", '["lockgate"]') in instructions
    assert "useradd --system" in runs


def test_dockerfile_copies_every_package_and_the_ignore_file_lets_them_through() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set()
    for word, rest in dockerfile_instructions():
        if word == "COPY" and not rest.startswith("--from"):
            *sources, _ = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                copied.add(source.rstrip("/"))
    assert packages <= copied
    assert {"pyproject.toml", project["project"]["readme"]} <= copied
    ignore = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert copied <= allowed


# ------------------------------------------------------------------ the sim profile, run


@pytest.fixture
def sim_script(compose: dict[str, Any], tmp_path: Path) -> str:
    sim = services(compose)["sim"]
    assert sim["entrypoint"] == ["/bin/sh", "-c"]
    text = script(sim)
    # Compose interpolation: only $$ (a literal $) may appear in the script.
    assert not re.search(r"(?<!\$)\$(?!\$)", text.replace("$$", "")), "unescaped $ in the script"
    text = text.replace("$$", "$")
    (source, target, _) = next(m for m in mounts(sim) if m[1].endswith(".toml"))
    assert f"--config {target}" in text
    assert bind_source(source) == DEPLOY / "lockgate-site.toml"
    # Container paths under /tmp/ first: the checkout itself may live under /tmp.
    text = text.replace("/tmp/", f"{tmp_path}/")
    return text.replace(target.replace("/tmp/", f"{tmp_path}/"), str(DEPLOY / "lockgate-site.toml"))


@pytest.fixture
def sim_process(
    sim_script: str, broker: PrivateMosquitto, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Path, str]]:
    topic = f"bench{uuid.uuid4().hex[:8]}"
    env = process_env(
        {
            "LOCKGATE_SIM_CONTROL_PORT": "0",
            "LOCKGATE_MQTT__HOST": broker.host,
            "LOCKGATE_MQTT__PORT": str(broker.port),
            "LOCKGATE_MQTT__BASE_TOPIC": topic,
            "LOCKGATE_MQTT__CLIENT_ID": topic,
        }
    )
    output = tmp_path / "sim.log"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", sim_script],
            cwd=tmp_path,  # the container's working directory: lockgate.db goes here
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc, output, topic
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        assert proc.poll() is None, f"exited {proc.returncode}:\n{path.read_text()}"
        assert time.monotonic() < deadline, f"no {text!r} after {timeout:g} s:\n{path.read_text()}"
        time.sleep(0.1)


def retained(broker: PrivateMosquitto, topic: str) -> str:
    command = [mosquitto_sub(), "-h", broker.host, "-p", str(broker.port), "-t", topic]
    done = subprocess.run(
        [*command, "-C", "1", "-W", "5"], capture_output=True, text=True, timeout=15
    )
    return done.stdout.strip()


def test_sim_service_runs_a_site_and_its_gateway_and_stops_both(
    sim_process: tuple[subprocess.Popen[bytes], Path, str],
    broker: PrivateMosquitto,
    tmp_path: Path,
) -> None:
    proc, output, topic = sim_process
    wait_for(output, "lockgate running", proc)
    assert '"state":"online"' in retained(broker, f"{topic}/v1/bridge/state").replace(" ", "")
    # The gateway got the site's devices (printed by the site, exported by the script).
    site = (tmp_path / "lockgate-site.json").read_text()
    assert '"wall-hallsberg"' in site and "/dev/pts/" in site
    assert (tmp_path / "lockgate.db").is_file()

    proc.send_signal(signal.SIGTERM)  # docker stop
    assert proc.wait(timeout=30) == 0, output.read_text()
    log = output.read_text()
    assert "lockgate stopped" in log
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # nothing of the site or the gateway is left
    assert '"state":"offline"' in retained(broker, f"{topic}/v1/bridge/state").replace(" ", "")


def test_sim_script_fails_clearly_when_the_site_cannot_start(
    sim_script: str, tmp_path: Path
) -> None:
    broken = sim_script.replace("lockgate sim site", "lockgate sim site /nonexistent.toml", 1)
    done = subprocess.run(
        ["/bin/sh", "-c", broken],
        cwd=tmp_path,
        env=process_env({"LOCKGATE_SIM_CONTROL_PORT": "0"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "the simulated site did not start" in done.stderr
    assert "no such site file" in done.stderr

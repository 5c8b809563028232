"""The test-bench units of deploy/systemd, run as systemd would: the simulated site's unit
writes a devices.env that hands deploy/lockgate-site.toml exactly the site's devices, and the
per-device templates leave the stable paths that file names; in both cases the gateway then
reaches every simulated device over its real protocol."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from drivers.registry import load_key_station
from gateway.config import ControllerDeviceSettings, DeviceSettings, load_settings
from gateway.demo.broker import free_port
from tests.deploy.bench import device_config, serving, started_unit, wait_online
from tests.deploy.units import (
    DEPLOY,
    RUN_DIR,
    SYSTEMD,
    argv,
    parse_environment_file,
    parse_unit,
    process_env,
    run_post,
)

SITE_CONFIG = DEPLOY / "lockgate-site.toml"


@pytest.fixture
def gateway_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What differs from a bench: a fresh SQLite file, no broker (the devices are tested)."""
    for name in ("LOCKGATE_CONFIG", "LOCKGATE_STATIONS", "LOCKGATE_CONTROLLERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOCKGATE_DATABASE__URL", f"sqlite:///{tmp_path}/bench.db")
    monkeypatch.setenv("LOCKGATE_MQTT__ENABLED", "false")


async def test_site_unit_hands_its_devices_to_the_gateway(
    tmp_path: Path, gateway_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    with started_unit(
        "lockgate-sim-site.service", run, env={"LOCKGATE_SIM_CONTROL_PORT": "0"}
    ) as site:
        assert site.poll() is None
        folder = run / "lockgate-sim" / "site"
        printed = json.loads((folder / "site.json").read_text().splitlines()[0])
        # What the drop-in's EnvironmentFile= gives the gateway, read as systemd reads it.
        variables = parse_environment_file((folder / "devices.env").read_text())
        assert set(variables) == {"LOCKGATE_STATIONS", "LOCKGATE_CONTROLLERS"}
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

        settings = load_settings(SITE_CONFIG)
        models = {"stations": DeviceSettings, "controllers": ControllerDeviceSettings}
        for kind, model in models.items():
            expected = [model.model_validate(d) for d in printed[kind]]
            assert getattr(settings, kind) == expected
        assert {d.id for d in settings.stations} == {"desk-1", "wall-hallsberg"}

        async with serving(settings) as gateway:
            # The wall station and the controller are served by the gateway itself.
            await wait_online(gateway, {"wall-hallsberg", "ctrl-office"})
        # The desk station is operated (`lockgate station`): its pseudo-terminal answers too.
        desk = load_key_station(device_config(settings, "desk-1"))
        await desk.open()
        try:
            assert desk.info.station_id == "desk-1"
        finally:
            await desk.close()


def test_site_unit_escapes_what_systemd_would_unescape(tmp_path: Path) -> None:
    """devices.env survives backslashes and quotes in what the site prints."""
    unit = parse_unit(SYSTEMD / "lockgate-sim-site.service")
    folder = tmp_path / "lockgate-sim" / "site"
    folder.mkdir(parents=True)
    tables = {
        "stations": [
            {
                "id": "odd \"one\" 'x'",
                "driver": "serial-station",
                "options": {"port": "C:\\ports\\COM3\\n", "baudrate": 9600},
                "operated": True,
            }
        ],
        "controllers": [],
    }
    (folder / "site.json").write_text(json.dumps({"control": "127.0.0.1:1", **tables}) + "\n")
    convert = unit.values("Service", "ExecStartPost")[-1]
    run_post(argv(convert, paths={RUN_DIR: str(tmp_path / "lockgate-sim")}), process_env({}))
    variables = parse_environment_file((folder / "devices.env").read_text())
    assert json.loads(variables["LOCKGATE_STATIONS"]) == tables["stations"]
    assert json.loads(variables["LOCKGATE_CONTROLLERS"]) == []


async def test_templates_give_the_paths_the_example_config_names(
    tmp_path: Path, gateway_env: None
) -> None:
    run = tmp_path / "run"
    modbus_port = free_port()
    config = SITE_CONFIG.read_text()
    assert "port = 1502" in config
    moved = tmp_path / "lockgate-site.toml"
    moved.write_text(
        config.replace(RUN_DIR, str(run / "lockgate-sim")).replace(
            "port = 1502", f"port = {modbus_port}"
        )
    )
    station = "lockgate-sim-station@.service"
    with (
        started_unit(station, run, instance="desk-1", env={"LOCKGATE_SIM_ARGS": "--mounting desk"}),
        started_unit(
            station,
            run,
            instance="wall-hallsberg",
            env={"LOCKGATE_SIM_ARGS": "--mounting wall --control-port 0"},
        ),
        started_unit(
            "lockgate-sim-controller@.service",
            run,
            instance="ctrl-office",
            env={"LOCKGATE_SIM_ARGS": f"--port {modbus_port} --doors 4 --control-port 0"},
        ),
    ):
        assert _links_to_a_pty(run / "lockgate-sim" / "station-desk-1" / "pty")
        await _wait_listening(modbus_port)
        settings = load_settings(moved)
        async with serving(settings) as gateway:
            await wait_online(gateway, {"wall-hallsberg", "ctrl-office"})
        desk = load_key_station(device_config(settings, "desk-1"))
        await desk.open()
        try:
            assert desk.info.station_id == "desk-1"
        finally:
            await desk.close()


def _links_to_a_pty(link: Path) -> bool:
    return link.is_symlink() and link.resolve().is_char_device()


async def _wait_listening(port: int, timeout: float = 15.0) -> None:
    """The controller simulator is a separate process with no readiness signal: wait for its
    Modbus port (the gateway would retry anyway; this keeps the test's time bounded)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)

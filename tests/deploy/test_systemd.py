"""deploy/systemd: every unit is valid for systemd (``systemd-analyze verify`` where the
binary exists) and has the settings operations rely on: the gateway's restart policy, user,
sandbox and serial devices; test-bench units that hand their devices to the gateway."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.units import INSTALL_BIN, RUN_DIR, SYSTEMD, VENV_BIN, Unit, parse_unit

UNITS = sorted(p.name for p in SYSTEMD.glob("*.service"))
INSTANCES = {
    "lockgate-sim-station@.service": "desk-1",
    "lockgate-sim-controller@.service": "ctrl-office",
    "lockgate-agent@.service": "depot-hallsberg",
    "lockgate-sim-uhppote@.service": "uhppote-gate",
}


def unit(name: str) -> Unit:
    return parse_unit(SYSTEMD / name)


def test_the_expected_units_are_there() -> None:
    assert UNITS == [
        "lockgate-agent@.service",
        "lockgate-sim-controller@.service",
        "lockgate-sim-site.service",
        "lockgate-sim-station@.service",
        "lockgate-sim-uhppote@.service",
        "lockgate.service",
    ]
    assert (SYSTEMD / "lockgate.service.d" / "test-bench.conf").is_file()


# ------------------------------------------------------------------ systemd's own check


def verifiable_copy(tmp_path: Path) -> Path:
    """deploy/systemd in a folder, with lockgate's install path pointing at this checkout's
    virtualenv: systemd-analyze checks that every command exists and is executable."""
    folder = tmp_path / "systemd"
    shutil.copytree(SYSTEMD, folder)
    for path in [*folder.glob("*.service"), *folder.glob("*.d/*.conf")]:
        path.write_text(path.read_text().replace(INSTALL_BIN, f"{VENV_BIN}/"))
    return folder


@pytest.mark.parametrize("name", UNITS)
def test_unit_passes_systemd_analyze_verify(name: str, tmp_path: Path) -> None:
    """Where systemd-analyze exists it must accept the unit without a single warning (an
    unknown key or a bad value is only a warning to systemd). Without it the structural
    checks of the tests below are what runs."""
    binary = shutil.which("systemd-analyze")
    if binary is None:
        # Structural checks only: parse the unit and require what systemd requires.
        u = unit(name)
        assert u.has("Unit", "Description")
        assert u.values("Service", "ExecStart")
        assert all(c.lstrip("-@:+!").startswith("/") for c in u.values("Service", "ExecStart"))
        return
    folder = verifiable_copy(tmp_path)
    target = name.replace("@.", f"@{INSTANCES.get(name, 'x')}.")
    done = subprocess.run(
        [binary, "verify", "--man=no", str(folder / target)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=folder,
    )
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 0 and not output, output


def test_verify_would_catch_a_mistake(tmp_path: Path) -> None:
    """The check above fails on what it must fail on (here: a misspelt key)."""
    binary = shutil.which("systemd-analyze")
    folder = verifiable_copy(tmp_path)
    broken = folder / "lockgate.service"
    broken.write_text(broken.read_text().replace("ProtectHome=yes", "ProtectHomes=yes"))
    if binary is None:
        assert not parse_unit(broken).has("Service", "ProtectHome")
        return
    done = subprocess.run(
        [binary, "verify", "--man=no", str(broken)], capture_output=True, text=True, timeout=60
    )
    assert "ProtectHomes" in done.stdout + done.stderr


# ------------------------------------------------------------------ the gateway


def test_gateway_runs_lockgate_run_with_the_production_config() -> None:
    u = unit("lockgate.service")
    assert u.value("Service", "Type") == "simple"  # lockgate sends no sd_notify
    assert u.value("Service", "ExecStart") == (
        f"{INSTALL_BIN}lockgate run --config /etc/lockgate/lockgate.toml"
    )
    assert u.value("Install", "WantedBy") == "multi-user.target"


def test_gateway_restart_policy() -> None:
    u = unit("lockgate.service")
    assert u.value("Service", "Restart") == "on-failure"
    assert int(u.value("Unit", "StartLimitBurst")) >= 1
    assert u.value("Unit", "StartLimitIntervalSec")
    # Exit code 2 is an invalid configuration (gateway/cli/run.py): restarting cannot help.
    assert u.value("Service", "RestartPreventExitStatus") == "2"
    assert u.value("Service", "KillSignal") == "SIGTERM"


def test_gateway_runs_as_its_own_user_with_its_state_directory() -> None:
    u = unit("lockgate.service")
    assert u.value("Service", "User") == "lockgate"
    assert u.value("Service", "Group") == "lockgate"
    assert u.value("Service", "StateDirectory") == "lockgate"
    # The SQLite default (lockgate.db in the working directory) lands in the state directory.
    assert u.value("Service", "WorkingDirectory") == "/var/lib/lockgate"


def test_gateway_sandbox() -> None:
    u = unit("lockgate.service")
    expected = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "CapabilityBoundingSet": "",
        "SystemCallFilter": "@system-service",
    }
    assert {k: u.value("Service", k) for k in expected} == expected


def test_gateway_may_open_usb_serial_stations_and_nothing_else() -> None:
    u = unit("lockgate.service")
    assert u.value("Service", "SupplementaryGroups") == "dialout"
    assert u.value("Service", "DevicePolicy") == "closed"
    assert u.values("Service", "DeviceAllow") == ["char-ttyUSB rw", "char-ttyACM rw"]
    # PrivateDevices= would hide /dev/ttyUSB* behind a private /dev.
    assert not u.has("Service", "PrivateDevices")


# ------------------------------------------------------------------ test benches


@pytest.mark.parametrize(
    ("name", "subcommand"),
    [
        ("lockgate-sim-site.service", "sim site"),
        ("lockgate-sim-station@.service", "sim station --station-id %i"),
        ("lockgate-sim-controller@.service", "sim controller --controller-id %i"),
        ("lockgate-sim-uhppote@.service", "sim uhppote $LOCKGATE_SIM_ARGS"),
    ],
)
def test_simulator_units(name: str, subcommand: str) -> None:
    u = unit(name)
    assert f"{INSTALL_BIN}lockgate {subcommand}" in u.value("Service", "ExecStart")
    # The gateway opens the simulators' pseudo-terminals: same user.
    assert u.value("Service", "User") == "lockgate"
    assert u.value("Service", "Restart") == "on-failure"
    assert "lockgate.service" in u.value("Unit", "Before")
    assert u.value("Service", "ProtectSystem") == "strict"
    assert u.value("Service", "NoNewPrivileges") == "yes"


def test_bench_drop_in_loads_what_the_site_writes() -> None:
    site = unit("lockgate-sim-site.service")
    drop_in = parse_unit(SYSTEMD / "lockgate.service.d" / "test-bench.conf")
    runtime = site.value("Service", "RuntimeDirectory")
    written = f"/run/{runtime}/devices.env"
    assert written.startswith(RUN_DIR)
    # The converting command (run for real in test_test_bench.py) writes devices.env there.
    post = " ".join(site.values("Service", "ExecStartPost"))
    assert f"pathlib.Path('/run/{runtime}')" in post and "'devices.env'" in post
    assert drop_in.value("Service", "EnvironmentFile") == written
    assert drop_in.value("Unit", "After") == "lockgate-sim-site.service"
    assert drop_in.value("Unit", "Requires") == "lockgate-sim-site.service"
    assert drop_in.value("Unit", "PartOf") == "lockgate-sim-site.service"
    assert "char-pts rw" in drop_in.values("Service", "DeviceAllow")


def test_core_drop_in_runs_a_core_instance_with_the_production_config() -> None:
    drop_in = parse_unit(SYSTEMD / "lockgate.service.d" / "core.conf")
    # An empty ExecStart= first: a drop-in replaces the unit's command instead of adding one.
    assert drop_in.values("Service", "ExecStart") == [
        "",
        f"{INSTALL_BIN}lockgate run --role core --config /etc/lockgate/lockgate.toml",
    ]


def test_station_template_link_is_what_the_example_config_names() -> None:
    u = unit("lockgate-sim-station@.service")
    assert u.value("Service", "RuntimeDirectory") == "lockgate-sim/station-%i"
    post = " ".join(u.values("Service", "ExecStartPost"))
    assert "ln -sfn" in post and "/run/lockgate-sim/station-%i/pty" in post
    config = (SYSTEMD.parent / "lockgate-site.toml").read_text()
    for station in ("desk-1", "wall-hallsberg"):
        assert f'"/run/lockgate-sim/station-{station}/pty"' in config

"""Running deploy/systemd units on this machine the way systemd would (without systemd), and
a gateway with its sync engine on the devices they simulate."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

from drivers.base import DeviceConfig
from gateway.compose import build_gateway
from gateway.config import Settings
from gateway.runtime import Gateway
from gateway.store import device_records as sync_store
from tests.deploy.units import (
    RUN_DIR,
    SYSTEMD,
    argv,
    environment,
    parse_unit,
    process_env,
    run_post,
)


@contextlib.contextmanager
def started_unit(
    name: str,
    run_dir: Path,
    *,
    instance: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a unit as systemd does for ``Type=exec``: create its runtime directories, run
    ``ExecStart=``, then every ``ExecStartPost=`` in order (each must succeed). ``run_dir``
    stands in for /run; ``env`` for the unit's ``EnvironmentFile=``. Stopped with SIGTERM
    (``KillSignal=`` default) on exit."""
    unit = parse_unit(SYSTEMD / name)
    variables = environment(unit, env)
    paths = {RUN_DIR: str(run_dir / Path(RUN_DIR).name)}
    for runtime in unit.values("Service", "RuntimeDirectory"):
        folder = runtime.replace("%i", instance or "")
        (run_dir / folder).mkdir(parents=True, exist_ok=True)
    command = argv(
        unit.value("Service", "ExecStart"), instance=instance, env=variables, paths=paths
    )
    log = (run_dir / f"{name}.{instance or ''}.log").open("wb")
    proc = subprocess.Popen(
        command,
        env=process_env(variables),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        for post in unit.values("Service", "ExecStartPost"):
            run_post(
                argv(post, instance=instance, env=variables, paths=paths), process_env(variables)
            )
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        log.close()


def device_config(settings: Settings, device_id: str) -> DeviceConfig:
    for d in [*settings.stations, *settings.controllers]:
        if d.id == device_id:
            return DeviceConfig(d.id, d.driver, dict(d.options))
    raise LookupError(device_id)


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Gateway]:
    """The gateway ``lockgate run`` builds from ``settings``, with the sync engine serving the
    configured devices."""
    gateway = build_gateway(settings)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def wait_online(gateway: Gateway, devices: set[str], timeout: float = 20.0) -> None:
    """Wait until every device in ``devices`` was recorded online by its worker."""

    def online() -> dict[str, tuple[bool, str]]:
        with gateway.core.db.session(readonly=True) as s:
            return {d.device_id: (d.online, d.reason) for d in sync_store.device_statuses(s)}

    deadline = time.monotonic() + timeout
    while True:
        status = await gateway.call(online)
        if all(status.get(d, (False, ""))[0] for d in devices):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"devices not online after {timeout:g} s: {status}")
        await asyncio.sleep(0.1)

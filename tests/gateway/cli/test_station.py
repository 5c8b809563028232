"""``lockgate station``: the operator's flow at a desk station, as its own process, against a
simulated station on a real pseudo-terminal."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.core import Core, Submission
from gateway.domain import DEFAULT_TIMEZONE
from gateway.store import device_records as sync_store
from gateway.store import migrate
from gateway.store.database import Database
from simulators.site import DEFAULT_SITE, SimulatedSite, load_site
from tests import sample

LOCKGATE = str(Path(sys.executable).with_name("lockgate"))


async def read_until(stream: asyncio.StreamReader, text: str, seen: list[str]) -> None:
    async with asyncio.timeout(30):
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"output ended before {text!r}: {''.join(seen)}")
            seen.append(line)
            if text in line:
                return


async def test_a_key_inserted_at_the_desk_is_shown_programmed_and_verified(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/lockgate.db"
    migrate.upgrade(url)
    db = Database(url)
    try:
        core = Core(db)
        today = datetime.now(UTC).astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date()
        core.submit_many(
            [Submission(c, "loader") for c in sample.sample_commands(today)], atomic=True
        )
    finally:
        db.dispose()
    async with SimulatedSite(load_site(DEFAULT_SITE), control_port=None) as site:
        desk = next(s for s in site.station_devices() if s["id"] == "desk-1")
        config = tmp_path / "lockgate.toml"
        config.write_text(
            f'[database]\nurl = "{url}"\n[mqtt]\nenabled = false\n'
            f'[[stations]]\nid = "desk-1"\ndriver = "serial-station"\noperated = true\n'
            f'options = {{ port = "{desk["options"]["port"]}" }}\n'
        )
        proc = await asyncio.create_subprocess_exec(
            LOCKGATE,
            "--config",
            str(config),
            "station",
            "--yes",
            "--once",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        )
        assert proc.stdout is not None
        seen: list[str] = []
        try:
            await read_until(proc.stdout, "waiting for a key", seen)
            site.insert("desk-1", sample.KEY_CECILIA)
            await read_until(proc.stdout, "programmed and verified", seen)
            async with asyncio.timeout(30):
                rest = (await proc.stdout.read()).decode()
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        out = "".join(seen) + rest
        assert proc.returncode == 0, out
        assert "Cecilia Ek" in out
        assert "not granted: sp-tech (COMPETENCE_MISSING)" in out
        assert "+ 200201, 200202" in out
        site.remove("desk-1")
        assert site.visit(sample.KEY_CECILIA, 200201)["granted"]
    db = Database(url)
    try:
        with db.session(readonly=True) as s:
            assert sync_store.get_key(s, sample.KEY_CECILIA) is not None
    finally:
        db.dispose()

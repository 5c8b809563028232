"""``lockgate devices``: the UHPPOTE search and the audited install mode of an OSDP reader,
against the simulators (a search on loopback; readers on a pseudo-terminal)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.osdp import Scbk
from drivers.osdp.keys import store_keys
from gateway.audit import log as audit_log
from gateway.store.database import Database
from simulators.osdp import OsdpSimulator, ReaderSpec
from simulators.uhppote import UhppoteController, UhppoteServer, UhppoteSimulator
from tests.gateway.cli.util import lockgate, site, token

READER = 111


@pytest.fixture
async def uhppote() -> AsyncIterator[UhppoteSimulator]:
    controllers = [UhppoteController(405419896, doors=2), UhppoteController(423187757)]
    sim = UhppoteSimulator(UhppoteServer(controllers), control_port=None)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.close()


def _search(db: Database, sim: UhppoteSimulator, *extra: str) -> tuple[int, str, str]:
    out = lockgate(
        db,
        "devices",
        "discover",
        "--uhppote",
        "--address",
        f"127.0.0.1:{sim.server.port}",
        "--bind",
        "127.0.0.1",
        "--timeout",
        "0.5",
        *extra,
    )
    return out.exit_code, out.stdout, out.stderr


async def test_discover_lists_the_controllers_that_answer(
    db: Database, uhppote: UhppoteSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    code, stdout, stderr = await asyncio.to_thread(_search, db, uhppote, "--json")
    assert code == 0, stderr
    found = json.loads(stdout)
    assert [f["serial"] for f in found] == [405419896, 423187757]
    assert all(f["firmware"] and f["mac"] for f in found)
    # A reply that is not protocol is dropped with a logged reason; the other is listed.
    uhppote.server.faults.malformed = "function"
    uhppote.server.faults.malformed_count = 1
    code, stdout, stderr = await asyncio.to_thread(_search, db, uhppote, "--json")
    assert code == 0, stderr
    assert len(json.loads(stdout)) == 1
    assert "not protocol" in caplog.text
    # Nobody there: said plainly.
    uhppote.server.faults.drop = -1
    code, stdout, _ = await asyncio.to_thread(_search, db, uhppote)
    assert code == 0 and "no UHPPOTE controller answered" in stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((), "--uhppote"),
        (("--uhppote", "--address", "controller.local"), "--address"),
        (("--uhppote", "--bind", "eth0"), "--bind"),
        (("--uhppote", "--timeout", "0"), "--timeout"),
    ],
)
def test_discover_bad_input_names_the_option(
    db: Database, args: tuple[str, ...], named: str
) -> None:
    out = lockgate(db, "devices", "discover", *args)
    assert out.exit_code == 2 and named in out.stderr, out.stderr


# ------------------------------------------------------------------ install mode


@pytest.fixture
async def factory_reader(
    tmp_path: Path,
) -> AsyncIterator[tuple[OsdpSimulator, Scbk, dict[str, str]]]:
    """A reader fresh from the factory (default key) and the gateway's configuration of its
    bus, with the key it is to get in the key file."""
    key = Scbk.generate()
    key_file = tmp_path / "keys.json"
    store_keys(key_file, {READER: key})
    async with OsdpSimulator([ReaderSpec(READER, None)], control_port=None) as sim:
        controllers = [
            {
                "id": "osdp-1",
                "driver": "osdp-reader",
                "options": {
                    **sim.driver_options(),
                    "key_file": str(key_file),
                    "state_dir": str(tmp_path / "state"),
                    "retry_s": 0.5,
                },
            }
        ]
        yield sim, key, {"LOCKGATE_CONTROLLERS": json.dumps(controllers)}


def _entries(db: Database) -> list[audit_log.Entry]:
    with db.session(readonly=True) as s:
        return list(audit_log.entries(s, subject="device osdp-1"))


async def test_install_mode_is_an_audited_operator_action(
    db: Database, factory_reader: tuple[OsdpSimulator, Scbk, dict[str, str]]
) -> None:
    sim, key, env = factory_reader
    site(db)
    reader = sim.readers[READER]
    # Reception may not: refused, the refusal logged, the reader untouched.
    refused = await asyncio.to_thread(
        lockgate,
        db,
        "devices",
        "install-key",
        "osdp-1",
        "--door",
        "1",
        operator="desk",
        token=token("desk"),
        env=env,
    )
    assert refused.exit_code == 1 and "may not manage_devices" in refused.stderr
    assert reader.scbk is None
    (refusal,) = _entries(db)
    assert (refusal.actor, refusal.action, refusal.data["status"]) == (
        "desk",
        "device.install_key",
        "refused",
    )
    before = len(_entries(db))
    done = await asyncio.to_thread(
        lockgate,
        db,
        "devices",
        "install-key",
        "osdp-1",
        "--door",
        "1",
        "--json",
        operator="admin",
        token=token("admin"),
        env=env,
    )
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["installed"] is True
    assert reader.scbk == key
    logged = _entries(db)[before:]
    assert [(e.actor, e.action) for e in logged] == [("admin", "device.install_key")] * 2
    assert [e.data["step"] for e in logged] == ["requested", "done"]
    assert logged[1].data["installed"] is True
    assert key.reveal().hex() not in done.stdout + json.dumps([e.data for e in logged])


def test_install_mode_bad_input_changes_nothing(db: Database, tmp_path: Path) -> None:
    site(db)
    env = {
        "LOCKGATE_CONTROLLERS": json.dumps(
            [
                {
                    "id": "osdp-1",
                    "driver": "osdp-reader",
                    "options": {"port": "/dev/null", "state_dir": str(tmp_path), "address": 5},
                },
                {"id": "ctrl", "driver": "modbus-door", "options": {"host": "127.0.0.1"}},
            ]
        )
    }
    for args, named in (
        (("osdp-9", "--door", "1"), "CONTROLLER"),
        (("ctrl", "--door", "1"), "not an osdp-reader"),
        (("osdp-1", "--door", "2"), "--door"),
    ):
        out = lockgate(
            db, "devices", "install-key", *args, operator="admin", token=token("admin"), env=env
        )
        assert out.exit_code == 2 and named in out.stderr, out.stderr
    assert _entries(db) == []

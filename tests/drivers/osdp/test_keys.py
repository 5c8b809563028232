"""The key file: created 0600, refused when others may read it, keys never shown."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from drivers.base import DeviceUnavailable
from drivers.osdp import KeyFile, KeyFileError, Scbk
from drivers.osdp.keys import load_keys, store_keys
from simulators.osdp import OsdpSimulator, ReaderSpec
from tests.drivers.osdp.conftest import DOOR1, DOOR2, driver_for, wait_for


def test_created_0600_with_a_fresh_key_per_reader(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    old = os.umask(0)
    try:
        keys = KeyFile.open(path, [5, 9])
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.key(5) != keys.key(9)
    assert KeyFile.open(path, [5, 9]).key(5) == keys.key(5)
    assert not [p for p in tmp_path.iterdir() if p.name != "keys.json"]


def test_a_new_reader_gets_a_key_and_the_others_keep_theirs(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    first = KeyFile.open(path, [5])
    second = KeyFile.open(path, [5, 6])
    assert second.key(5) == first.key(5)
    assert set(load_keys(path)) == {5, 6}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    KeyFile.open(path, [5])
    path.chmod(0o640)
    with pytest.raises(KeyFileError, match=r"mode 0640 .* must be 0600"):
        KeyFile.open(path, [5])


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"format": 2, "readers": {}}, "format"),
        ({"format": 1, "readers": []}, "readers"),
        ({"format": 1, "readers": {"200": "00" * 16}}, "'200' is not an address"),
        ({"format": 1, "readers": {"5": "00" * 15}}, "readers.5: must be 32 hex digits"),
        ({"format": 1, "readers": {"5": "zz" * 16}}, "readers.5: must be 32 hex digits"),
    ],
)
def test_bad_key_files_name_the_field_not_the_key(
    tmp_path: Path, doc: dict[str, object], field: str
) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=field) as err:
        KeyFile.open(path, [5])
    assert "00" * 15 not in str(err.value)
    assert "zz" not in str(err.value)


def test_an_scbk_does_not_show_itself() -> None:
    key = Scbk(bytes(range(16)))
    assert repr(key) == str(key) == "Scbk(<hidden>)"
    assert bytes(range(16)).hex() not in repr(KeyFile(Path("k"), {1: key}))
    with pytest.raises(ValueError, match="16 bytes"):
        Scbk(b"short")


async def test_driver_refuses_a_key_file_others_can_read(
    tmp_path: Path, state_dir: Path, key_file: Path, sim: OsdpSimulator
) -> None:
    os.chmod(key_file, 0o644)
    drv = driver_for(sim, state_dir, key_file)
    with pytest.raises(DeviceUnavailable, match=r"key_file .* mode 0644"):
        await drv.open()


async def test_no_key_material_in_logs_errors_or_status(
    tmp_path: Path,
    state_dir: Path,
    key_file: Path,
    keys: dict[int, Scbk],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [k.reveal().hex() for k in keys.values()]
    wrong = tmp_path / "wrong.json"
    store_keys(wrong, {DOOR1: Scbk.generate(), DOOR2: Scbk.generate()})
    secrets += [k.reveal().hex() for k in load_keys(wrong).values()]
    texts: list[str] = []
    async with OsdpSimulator([ReaderSpec(DOOR1, None), ReaderSpec(DOOR2, keys[DOOR2])]) as sim:
        refused = driver_for(sim, state_dir, wrong, log_level="debug")
        with pytest.raises(DeviceUnavailable) as err:
            await refused.open()
        texts.append(str(err.value))
        drv = driver_for(sim, state_dir, key_file, log_level="debug")
        await drv.open()
        try:
            result = await drv.install_key(1)
            assert result.installed
            await wait_for(lambda: all(r["online"] for r in drv.reader_status()), what="online")
            texts += [repr(drv), repr(drv.options), json.dumps(drv.reader_status())]
            texts.append(json.dumps(sim.readers[DOOR1].commands(), default=str))
            texts.append(json.dumps(await sim.status(), default=str))
        finally:
            await drv.close()
    texts += [r.getMessage() for r in caplog.records]
    out, err_text = capfd.readouterr()
    texts += [out, err_text]
    assert "SC Active" in err_text or "Online" in err_text  # the library did log, at debug
    for secret in secrets:
        for variant in (
            secret,
            secret.upper(),
            " ".join(secret[i : i + 2] for i in range(0, 32, 2)),
        ):
            assert not [t for t in texts if variant in t]

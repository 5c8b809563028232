"""The panel's state directory: generation, atomic verified allow-list writes, door settings."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drivers.base import AllowEntry, DoorMode, VerifyMismatch
from drivers.osdp.allowlist import AllowList
from drivers.osdp.files import write_atomic
from drivers.osdp.state import PanelState

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _list(*credentials: int) -> AllowList:
    return AllowList.build([AllowEntry(c, 1) for c in credentials], [], doors=2, capacity=10)


def test_generation_is_drawn_once_and_kept(tmp_path: Path) -> None:
    first = PanelState.open(tmp_path, doors=2, capacity=10)
    assert first.generation > 0
    assert PanelState.open(tmp_path, doors=2, capacity=10).generation == first.generation
    assert first.allow_list is None


def test_store_is_atomic_and_read_back(tmp_path: Path) -> None:
    state = PanelState.open(tmp_path, doors=2, capacity=10)
    state.store_allow_list(_list(1, 2), T0)
    assert state.persisted_checksum() == _list(1, 2).checksum
    again = PanelState.open(tmp_path, doors=2, capacity=10)
    assert again.allow_list is not None
    assert again.allow_list.checksum == _list(1, 2).checksum
    assert sorted(os.listdir(tmp_path)) == ["allowlist.json", "identity.json"]


def test_a_write_that_does_not_read_back_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = PanelState.open(tmp_path, doors=2, capacity=10)
    state.store_allow_list(_list(1), T0)
    before = (tmp_path / "allowlist.json").read_bytes()
    # A disk that loses what was written: the temporary file reads back empty.
    real_write = os.write
    monkeypatch.setattr(
        os,
        "write",
        lambda fd, data: len(data) if b"checksum" in bytes(data) else real_write(fd, data),
    )
    with pytest.raises(VerifyMismatch, match="does not read back"):
        state.store_allow_list(_list(1, 2), T0)
    monkeypatch.undo()
    assert (tmp_path / "allowlist.json").read_bytes() == before
    assert state.allow_list is not None and state.allow_list.checksum == _list(1).checksum
    assert sorted(os.listdir(tmp_path)) == ["allowlist.json", "identity.json"]


def test_a_damaged_file_is_moved_aside_and_the_generation_changes(tmp_path: Path) -> None:
    state = PanelState.open(tmp_path, doors=2, capacity=10)
    state.store_allow_list(_list(1), T0)
    (tmp_path / "allowlist.json").write_text('{"format": 1, "checksum": 5, "entries": [], ')
    again = PanelState.open(tmp_path, doors=2, capacity=10)
    assert again.allow_list is None
    assert again.generation != state.generation
    assert [p for p in os.listdir(tmp_path) if p.startswith("allowlist.json.bad-")]
    why = json.loads((tmp_path / "identity.json").read_text())["why"]
    assert "allowlist.json was damaged" in why


def test_door_settings_persist(tmp_path: Path) -> None:
    state = PanelState.open(tmp_path, doors=2, capacity=10)
    state.door_settings[2].mode = DoorMode.SCHEDULED
    state.door_settings[2].schedule_id = 3
    state.door_settings[1].tamper = True
    state.door_settings[1].reported_online = False
    state.store_doors()
    again = PanelState.open(tmp_path, doors=2, capacity=10)
    assert again.door_settings[2].mode is DoorMode.SCHEDULED
    assert again.door_settings[2].schedule_id == 3
    assert again.door_settings[1].tamper is True
    assert again.door_settings[1].reported_online is False


def test_concurrent_writes_of_one_file_do_not_collide(tmp_path: Path) -> None:
    """Two writers of one file (the flush task and a door-mode change): each verifies its own
    bytes and each replace succeeds, even when both have written before either renames."""
    both_written = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []
    verified: dict[int, bytes] = {}

    def write(n: int) -> None:
        def verify(data: bytes) -> None:
            verified[n] = data
            both_written.wait()

        try:
            write_atomic(tmp_path / "doors.json", f'{{"writer": {n}}}'.encode(), verify=verify)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert verified == {0: b'{"writer": 0}', 1: b'{"writer": 1}'}
    assert json.loads((tmp_path / "doors.json").read_text())["writer"] in (0, 1)
    assert sorted(os.listdir(tmp_path)) == ["doors.json"]

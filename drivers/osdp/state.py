"""What the panel keeps on local disk, in its ``state_dir``, so that it decides correctly after
a restart with no network to the gateway.

``identity.json``
    The generation: a random number drawn when the directory is first used, and drawn again
    whenever the panel's memory cannot be trusted (a damaged allow-list file), so the gateway
    sees a new generation and writes everything again.
``allowlist.json``
    The last allow-list written and verified (see :class:`~drivers.osdp.allowlist.AllowList`).
    Replaced atomically: the new file is read back and its checksum compared with the list in
    memory before it takes the old one's place.
``doors.json``
    Each door's mode and schedule, the lock release and held-open times the gateway set, and
    the reader states last reported.
``events.jsonl``
    The event journal (:mod:`drivers.osdp.journal`).

All methods do blocking file I/O; the driver calls them from a worker thread.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from drivers.base import DoorMode, VerifyMismatch
from drivers.osdp.allowlist import AllowList, AllowListFileError
from drivers.osdp.files import same_file, write_atomic

log = logging.getLogger(__name__)

FORMAT = 1
IDENTITY = "identity.json"
ALLOW_LIST = "allowlist.json"
DOORS = "doors.json"
EVENTS = "events.jsonl"


@dataclass
class DoorSetting:
    """A door's mode and schedule, and the reader states last reported as events."""

    mode: DoorMode = DoorMode.LOCKED
    schedule_id: int = 0
    reported_online: bool | None = None
    tamper: bool = False
    power_failure: bool = False


@dataclass
class PanelState:
    """The persisted state of one panel (one bus)."""

    directory: Path
    doors: int
    capacity: int
    generation: int = 0
    allow_list: AllowList | None = None
    door_settings: dict[int, DoorSetting] = field(default_factory=dict)
    pulse_seconds: int | None = None
    """Lock release time the gateway set (None: the driver's ``pulse_s`` option)."""
    held_open_seconds: int | None = None
    _written: os.stat_result | None = None
    _doors_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, directory: Path, *, doors: int, capacity: int) -> PanelState:
        directory.mkdir(parents=True, exist_ok=True)
        state = cls(directory, doors, capacity)
        state.generation = state._load_generation()
        state._load_allow_list()
        state._load_doors()
        return state

    # ------------------------------------------------------------------ identity

    def _load_generation(self) -> int:
        path = self.directory / IDENTITY
        try:
            doc = json.loads(path.read_bytes())
            generation = doc["generation"]
            if doc.get("format") != FORMAT or not isinstance(generation, int) or generation < 1:
                raise ValueError("format or generation")
            return generation
        except FileNotFoundError:
            return self.new_generation("first use of the state directory")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("%s: unreadable (%s)", path, exc)
            return self.new_generation(f"{IDENTITY} was unreadable")

    def check_identity(self) -> int:
        """Compare the generation on disk with the one in memory: a state directory that was
        lost or replaced behind the driver (``identity.json`` gone or different) is memory
        lost, so a new generation is drawn (the gateway then writes everything again).
        Returns the generation."""
        path = self.directory / IDENTITY
        try:
            on_disk = json.loads(path.read_bytes()).get("generation")
        except FileNotFoundError:
            on_disk = None
        except (OSError, ValueError, AttributeError):
            on_disk = None
        if on_disk != self.generation:
            self.directory.mkdir(parents=True, exist_ok=True)
            if not (self.directory / ALLOW_LIST).exists():
                self._written = None
            return self.new_generation(f"{IDENTITY} was lost or replaced")
        return self.generation

    def new_generation(self, why: str) -> int:
        """Draw and store a new generation: the gateway will write everything again."""
        generation = secrets.randbelow(0x7FFFFFFF) + 1
        doc = {"format": FORMAT, "generation": generation, "why": why}
        write_atomic(self.directory / IDENTITY, (json.dumps(doc) + "\n").encode())
        log.warning("%s: new generation %d (%s)", self.directory, generation, why)
        self.generation = generation
        return generation

    # ------------------------------------------------------------------ allow-list

    def _load_allow_list(self) -> None:
        path = self.directory / ALLOW_LIST
        try:
            st = path.stat()
            data = path.read_bytes()
        except FileNotFoundError:
            return
        try:
            self.allow_list = AllowList.decode(data, doors=self.doors, capacity=self.capacity)
            self._written = st
        except AllowListFileError as exc:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            kept = path.with_name(f"{ALLOW_LIST}.bad-{stamp}")
            os.replace(path, kept)
            log.error(
                "%s: %s; moved aside to %s, no card is granted until the gateway writes a new list",
                path,
                exc,
                kept.name,
            )
            self.new_generation(f"{ALLOW_LIST} was damaged: {exc}")

    def store_allow_list(self, new: AllowList, now: datetime) -> int:
        """Write ``new`` atomically, verified by reading it back before it replaces the old
        file; returns the bytes written. Raises :class:`VerifyMismatch` (the old file stays)
        when it does not match."""
        path = self.directory / ALLOW_LIST

        def verify(data: bytes) -> None:
            try:
                back = AllowList.decode(data, doors=self.doors, capacity=self.capacity)
            except AllowListFileError as exc:
                raise VerifyMismatch(f"{path}: written file does not read back: {exc}") from None
            if back.checksum != new.checksum:
                raise VerifyMismatch(
                    f"{path}: written file sums to {back.checksum:#010x}, the list in memory "
                    f"to {new.checksum:#010x}"
                )

        data = new.encode(now)
        self._written = write_atomic(path, data, verify=verify)
        self.allow_list = new
        return len(data)

    def persisted_checksum(self) -> int | None:
        """The checksum of the allow-list file as it is on disk now (re-read only when the
        file changed since it was written or last read); None when there is no valid file."""
        path = self.directory / ALLOW_LIST
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        if (
            self._written is not None
            and self.allow_list is not None
            and same_file(st, self._written)
        ):
            return self.allow_list.checksum
        try:
            back = AllowList.decode(path.read_bytes(), doors=self.doors, capacity=self.capacity)
        except (OSError, AllowListFileError) as exc:
            log.error("%s: changed on disk and does not verify: %s", path, exc)
            return None
        log.warning("%s: changed on disk since it was written", path)
        return back.checksum

    # ------------------------------------------------------------------ doors

    def _load_doors(self) -> None:
        self.door_settings = {d: DoorSetting() for d in range(1, self.doors + 1)}
        path = self.directory / DOORS
        try:
            doc = json.loads(path.read_bytes())
            settings = doc.get("settings", {})
            pulse, held_open = settings.get("pulse_seconds"), settings.get("held_open_seconds")
            self.pulse_seconds = None if pulse is None else int(pulse)
            self.held_open_seconds = None if held_open is None else int(held_open)
            for name, value in doc["doors"].items():
                door = int(name)
                if door in self.door_settings:
                    online = value.get("reported_online")
                    self.door_settings[door] = DoorSetting(
                        mode=DoorMode(value["mode"]),
                        schedule_id=int(value["schedule_id"]),
                        reported_online=None if online is None else bool(online),
                        tamper=bool(value.get("tamper", False)),
                        power_failure=bool(value.get("power_failure", False)),
                    )
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("%s: unreadable (%s); every door starts locked", path, exc)

    def store_doors(self) -> None:
        with self._doors_lock:
            self._store_doors()

    def _store_doors(self) -> None:
        doc = {
            "format": FORMAT,
            "settings": {
                "pulse_seconds": self.pulse_seconds,
                "held_open_seconds": self.held_open_seconds,
            },
            "doors": {
                str(d): {
                    "mode": s.mode.value,
                    "schedule_id": s.schedule_id,
                    "reported_online": s.reported_online,
                    "tamper": s.tamper,
                    "power_failure": s.power_failure,
                }
                for d, s in sorted(self.door_settings.items())
            },
        }
        write_atomic(self.directory / DOORS, (json.dumps(doc) + "\n").encode())


__all__ = ["ALLOW_LIST", "DOORS", "EVENTS", "IDENTITY", "DoorSetting", "PanelState"]

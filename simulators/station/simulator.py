"""Composition of a simulated site around key stations: a :class:`SimWorld` (keys,
cylinders, clock, time zone) shared by any number of :class:`StationDevice`, and
:class:`StationSimulator`, one station on a pseudo-terminal with its control interface.

Control commands (JSON lines, see :mod:`simulators.control`)::

    add_key(serial, audit_capacity=1000)   create a blank (inactive) key
    keys()                                  every key's summary
    key(serial)                             one key's image summary
    insert(serial) / remove()               put a key in / pull it out of the station
    add_cylinder(cylinder)                  create an offline cylinder
    cylinders()                             every cylinder's blacklist version and event count
    cylinder(cylinder, limit=20)            blacklist and the most recent events
    visit(serial, cylinder)                 turn a key in a cylinder -> granted, reason, ...
    set_time(iso) / clock() / reset_clock() move / read the simulated clock
    fault(kind, ...) / faults()             inject faults (corrupt, drop, slow, pull_key,
                                            disconnect, clear) / read them
    status()                                station id, pty path, inserted key, counters
    reconnect()                             new pty after a disconnect (returns its path)
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drivers.serialstation.codes import Capability, Mounting
from simulators.control import ControlError, ControlServer, Handler
from simulators.station.clock import SimClock
from simulators.station.cylinder import Cylinder, Decision
from simulators.station.device import StationConfig, StationDevice
from simulators.station.faults import FaultPlan
from simulators.station.keys import DEFAULT_AUDIT_CAPACITY, KeyRegistry, VirtualKey
from simulators.station.ports import PtyPort

DEFAULT_TIMEZONE = "Europe/Stockholm"


def parse_cylinder_id(value: object, field: str = "cylinder") -> int:
    """A cylinder id from an int or a decimal string, 1..2**32-1."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 0xFFFFFFFF:
        raise ValueError(f"{field}: a cylinder id is an integer 1..4294967295")
    return value


def parse_serial(value: object, field: str = "serial") -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field}: a key serial is a non-empty string")
    return value


def load_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone: {name!r} is not a known IANA time zone") from None


class SimWorld:
    """Everything keys and cylinders share on a simulated site."""

    def __init__(
        self,
        *,
        timezone: str = DEFAULT_TIMEZONE,
        registry: KeyRegistry | None = None,
        clock: SimClock | None = None,
    ) -> None:
        self.tz = load_timezone(timezone)
        self.registry = registry if registry is not None else KeyRegistry()
        self.clock = clock if clock is not None else SimClock()
        self.cylinders: dict[int, Cylinder] = {}

    def add_key(self, serial: str, *, audit_capacity: int = DEFAULT_AUDIT_CAPACITY) -> VirtualKey:
        return self.registry.add(serial, audit_capacity=audit_capacity)

    def add_cylinder(self, cylinder_id: int) -> Cylinder:
        if cylinder_id in self.cylinders:
            raise ValueError(f"cylinder: cylinder {cylinder_id} already exists")
        cylinder = Cylinder(cylinder_id, tz=self.tz)
        self.cylinders[cylinder_id] = cylinder
        return cylinder

    def cylinder(self, cylinder_id: int) -> Cylinder:
        try:
            return self.cylinders[cylinder_id]
        except KeyError:
            raise LookupError(
                f"cylinder: no cylinder {cylinder_id}; create it with add_cylinder"
            ) from None

    def visit(self, serial: str, cylinder_id: int, *, at: datetime | None = None) -> Decision:
        """Turn key ``serial`` in cylinder ``cylinder_id`` (now, by the simulated clock)."""
        key = self.registry.get(serial)
        if key.location is not None:
            raise ValueError(f"serial: key {serial} is in station {key.location}")
        cylinder = self.cylinder(cylinder_id)
        return cylinder.visit(key, at if at is not None else self.clock.now())


class StationSimulator:
    """One station on a fresh pseudo-terminal, with its control server.

    ``async with StationSimulator(...) as sim:`` then open ``sim.pty_path`` with the
    driver and drive the station through ``sim.control_port`` or the Python methods."""

    def __init__(
        self,
        *,
        world: SimWorld | None = None,
        config: StationConfig | None = None,
        faults: FaultPlan | None = None,
        control_host: str = "127.0.0.1",
        control_port: int | None = 0,
    ) -> None:
        self.world = world if world is not None else SimWorld()
        self.config = config if config is not None else StationConfig()
        self.faults = faults if faults is not None else FaultPlan()
        self.device = StationDevice(self.config, registry=self.world.registry, faults=self.faults)
        self._port: PtyPort | None = None
        self.control: ControlServer | None = None
        if control_port is not None:
            self.control = ControlServer(host=control_host, port=control_port)
            self.register_commands(self.control)

    @property
    def pty_path(self) -> str:
        if self._port is None:
            raise RuntimeError("simulator is not started")
        return self._port.path

    @property
    def control_port(self) -> int:
        if self.control is None:
            raise RuntimeError("simulator has no control server")
        return self.control.port

    async def start(self) -> None:
        await self._open_pty()
        if self.control is not None:
            await self.control.start()

    async def _open_pty(self) -> None:
        await self.device.detach()
        self._port = PtyPort()
        await self.device.attach(self._port)

    async def reconnect(self) -> str:
        """Serve on a fresh pseudo-terminal (after a disconnect, as when a USB station is
        plugged in again) and return its path."""
        if self.device.attached:
            raise ControlError("reconnect: the station is still connected")
        await self._open_pty()
        return self.pty_path

    async def close(self) -> None:
        if self.control is not None:
            await self.control.close()
        await self.device.detach()

    async def __aenter__(self) -> StationSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ control commands

    def register_commands(self, server: ControlServer) -> None:
        """Register this station's and its world's commands on ``server``."""
        commands: dict[str, tuple[Handler, str]] = {
            "add_key": (self._cmd_add_key, "add_key(serial, audit_capacity=1000): new blank key"),
            "keys": (self._cmd_keys, "keys(): summary of every key"),
            "key": (self._cmd_key, "key(serial): image summary of one key"),
            "insert": (self._cmd_insert, "insert(serial): put a key into the station"),
            "remove": (self._cmd_remove, "remove(): pull the key out of the station"),
            "add_cylinder": (self._cmd_add_cylinder, "add_cylinder(cylinder): new cylinder"),
            "cylinders": (self._cmd_cylinders, "cylinders(): every cylinder"),
            "cylinder": (self._cmd_cylinder, "cylinder(cylinder, limit=20): blacklist, events"),
            "visit": (self._cmd_visit, "visit(serial, cylinder): turn a key in a cylinder"),
            "set_time": (self._cmd_set_time, "set_time(iso): move the simulated clock"),
            "clock": (self._cmd_clock, "clock(): simulated time, offset and time zone"),
            "reset_clock": (self._cmd_reset_clock, "reset_clock(): back to real time"),
            "fault": (self._cmd_fault, "fault(kind, ...): corrupt|drop|slow|pull_key|..."),
            "faults": (self._cmd_faults, "faults(): the faults in force"),
            "status": (self._cmd_status, "status(): station, pty, inserted key, counters"),
            "reconnect": (self._cmd_reconnect, "reconnect(): new pty after a disconnect"),
        }
        for name, (handler, doc) in commands.items():
            server.register(name, handler, doc)

    async def _cmd_add_key(
        self, serial: object, audit_capacity: int = DEFAULT_AUDIT_CAPACITY
    ) -> dict[str, Any]:
        return self.world.add_key(parse_serial(serial), audit_capacity=audit_capacity).summary()

    async def _cmd_keys(self) -> list[dict[str, Any]]:
        return [k.summary() for k in self.world.registry]

    async def _cmd_key(self, serial: object) -> dict[str, Any]:
        return self.world.registry.get(parse_serial(serial)).summary()

    async def _cmd_insert(self, serial: object) -> dict[str, Any]:
        return self.device.insert(parse_serial(serial)).summary()

    async def _cmd_remove(self) -> dict[str, Any]:
        return self.device.remove().summary()

    async def _cmd_add_cylinder(self, cylinder: object) -> dict[str, Any]:
        return self.world.add_cylinder(parse_cylinder_id(cylinder)).summary(limit=0)

    async def _cmd_cylinders(self) -> list[dict[str, Any]]:
        return [
            {
                "cylinder": c.cylinder_id,
                "blacklist_version": c.blacklist_version,
                "event_count": len(c.events),
            }
            for _, c in sorted(self.world.cylinders.items())
        ]

    async def _cmd_cylinder(self, cylinder: object, limit: int = 20) -> dict[str, Any]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 1000:
            raise ValueError("limit: must be an integer 0..1000")
        return self.world.cylinder(parse_cylinder_id(cylinder)).summary(limit=limit)

    async def _cmd_visit(self, serial: object, cylinder: object) -> dict[str, Any]:
        decision = self.world.visit(parse_serial(serial), parse_cylinder_id(cylinder))
        return decision.as_dict()

    async def _cmd_set_time(self, iso: str) -> dict[str, Any]:
        self.world.clock.set_iso(iso)
        return await self._cmd_clock()

    async def _cmd_clock(self) -> dict[str, Any]:
        now = self.world.clock.now()
        return {
            "now": now.isoformat(),
            "local": now.astimezone(self.world.tz).isoformat(),
            "timezone": str(self.world.tz),
            "offset_s": self.world.clock.offset.total_seconds(),
        }

    async def _cmd_reset_clock(self) -> dict[str, Any]:
        self.world.clock.reset()
        return await self._cmd_clock()

    async def _cmd_fault(self, kind: str, **params: Any) -> dict[str, Any]:
        return self.faults.set(kind, **params)

    async def _cmd_faults(self) -> dict[str, Any]:
        return self.faults.state()

    async def _cmd_status(self) -> dict[str, Any]:
        key = self.device.key
        return {
            "station_id": self.config.station_id,
            "mounting": Mounting(self.config.mounting).name.lower(),
            "capabilities": [
                str(c.name).lower() for c in Capability if self.config.capabilities & c
            ],
            "baudrate": self.config.baudrate,
            "pty": self._port.path if self._port is not None else None,
            "attached": self.device.attached,
            "key": key.serial if key is not None else None,
            "stats": dataclasses.asdict(self.device.stats),
        }

    async def _cmd_reconnect(self) -> dict[str, Any]:
        return {"pty": await self.reconnect()}

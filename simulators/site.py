"""A whole simulated site in one process: key stations on pseudo-terminals, offline cylinders,
virtual keys, Modbus door controllers and UHPPOTE access controllers, declared in a site file
and driven through one control interface.

Site file (TOML)::

    timezone = "Europe/Stockholm"        # where schedules are evaluated
    keys = ["100000001", "100000002"]     # virtual keys that exist (blank, inactive)

    [[stations]]
    id = "desk-1"                         # station id announced in HELLO
    mounting = "desk"                     # desk | wall
    baudrate = 115200                     # emulated line speed (0: unlimited)

    [[controllers]]
    id = "ctrl-office"
    doors = 4
    capacity = 2000
    transport = "tcp"                     # tcp | rtu (RTU on a pseudo-terminal pair)

    [[controllers]]
    id = "uhppote-gate"
    kind = "uhppote"                      # modbus (default) | uhppote
    serial = 423187757                    # uhppote: the controller's serial number
    doors = 2                             # uhppote: 1, 2 or 4
    events = 10000                        # uhppote: event log size (a ring)

    [[spaces]]                            # maps the site to the spaces of the store
    id = "sp-office"
    name = "Office entrance"
    cylinders = [200101]                  # offline cylinders created in this site
    doors = [{ controller = "ctrl-office", door = 1 }]

Control commands (JSON lines, :mod:`simulators.control`): ``status()``, ``insert(station,
serial)``, ``remove(station)``, ``visit(serial, cylinder)``, ``present(controller, credential,
door)``, ``power_loss(controller)``, ``add_key(serial)``, ``keys()``, ``key(serial)``,
``cylinder(cylinder, limit=20)``, ``set_time(iso)``, ``reset_clock()``, ``station_fault(station,
kind, ...)``, ``controller_fault(controller, kind, ...)``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from drivers.serialstation.codes import Mounting
from simulators.control import ControlServer
from simulators.controller.controls import ControllerSimulator
from simulators.controller.memory import ControllerMemory
from simulators.controller.server import ControllerServer
from simulators.station.device import StationConfig
from simulators.station.faults import FaultPlan
from simulators.station.simulator import SimWorld, StationSimulator, parse_cylinder_id
from simulators.uhppote import UhppoteController, UhppoteServer, UhppoteSimulator

DEFAULT_SITE = Path(__file__).with_name("sites") / "demo.toml"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StationSpec(_Spec):
    id: Annotated[str, Field(min_length=1, max_length=32)]
    mounting: Literal["desk", "wall"] = "desk"
    baudrate: Annotated[int, Field(ge=0, le=4_000_000)] = 115200


class ControllerSpec(_Spec):
    id: Annotated[str, Field(min_length=1, max_length=32)]
    kind: Literal["modbus", "uhppote"] = "modbus"
    doors: Annotated[int, Field(ge=1, le=16)] = 4
    capacity: Annotated[int, Field(ge=1, le=65535)] = 2000
    transport: Literal["tcp", "rtu"] = "tcp"
    """Modbus: TCP, or RTU on a pseudo-terminal pair. (A UHPPOTE controller answers both UDP
    and TCP; its driver picks.)"""
    port: Annotated[int, Field(ge=0, le=65535)] = 0
    serial: Annotated[int, Field(ge=1, le=0xFFFF_FFFE)] | None = None
    """UHPPOTE: the controller's serial number (required)."""
    events: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    """UHPPOTE: size of the event log (a ring: the oldest event is overwritten)."""

    @model_validator(mode="after")
    def _kind_fields(self) -> ControllerSpec:
        if self.kind == "uhppote":
            if self.serial is None:
                raise ValueError("serial: required for a uhppote controller")
            if self.doors not in (1, 2, 4):
                raise ValueError(f"doors: a uhppote controller has 1, 2 or 4, got {self.doors}")
            if self.transport != "tcp":
                raise ValueError("transport: a uhppote controller answers UDP and TCP; leave it")
        elif self.serial is not None:
            raise ValueError("serial: only a uhppote controller has a serial number")
        return self


class DoorSpec(_Spec):
    controller: str
    door: Annotated[int, Field(ge=1, le=16)]


class SpaceSpec(_Spec):
    id: Annotated[str, Field(min_length=1, max_length=64)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    cylinders: list[Annotated[int, Field(ge=1, le=0xFFFFFFFF)]] = []
    doors: list[DoorSpec] = []
    required_competences: list[str] = []
    revalidation_days: Annotated[int, Field(ge=1, le=365)] | None = None


class SiteSpec(_Spec):
    """A site file, validated."""

    timezone: str = "Europe/Stockholm"
    keys: list[Annotated[str, Field(pattern=r"^\d{9}$")]] = []
    stations: list[StationSpec] = []
    controllers: list[ControllerSpec] = []
    spaces: list[SpaceSpec] = []

    @field_validator("stations", "controllers")
    @classmethod
    def _unique_ids(cls, v: list[Any]) -> list[Any]:
        ids = [x.id for x in v]
        if len(set(ids)) != len(ids):
            raise ValueError("ids must be unique")
        serials = [x.serial for x in v if getattr(x, "serial", None) is not None]
        if len(set(serials)) != len(serials):
            raise ValueError("serial numbers must be unique")
        return v

    def cylinders(self) -> list[int]:
        return sorted({c for s in self.spaces for c in s.cylinders})


class SiteFileError(ValueError):
    """The site file cannot be used; the message names the file, the field and the reason."""


def load_site(path: Path) -> SiteSpec:
    """Read and validate a site file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SiteFileError(f"{path}: no such site file") from None
    except tomllib.TOMLDecodeError as exc:
        raise SiteFileError(f"{path}: not valid TOML: {exc}") from None
    try:
        spec = SiteSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise SiteFileError(f"{path}: {loc}: {err['msg']}") from None
    controllers = {c.id for c in spec.controllers}
    for space in spec.spaces:
        for d in space.doors:
            if d.controller not in controllers:
                raise SiteFileError(
                    f"{path}: spaces.{space.id}.doors: no controller {d.controller!r} is declared"
                )
    return spec


class SimulatedSite:
    """Every simulated device of a site, started and stopped together."""

    def __init__(self, spec: SiteSpec, *, control_port: int | None = 0) -> None:
        self.spec = spec
        self.world = SimWorld(timezone=spec.timezone)
        for serial in spec.keys:
            self.world.add_key(serial)
        for c in spec.cylinders():
            self.world.add_cylinder(c)
        self.stations: dict[str, StationSimulator] = {
            s.id: StationSimulator(
                world=self.world,
                config=StationConfig(
                    station_id=s.id, mounting=Mounting[s.mounting.upper()], baudrate=s.baudrate
                ),
                faults=FaultPlan(),
                control_port=None,
            )
            for s in spec.stations
        }
        clock = self.world.clock
        self.controllers: dict[str, ControllerSimulator] = {
            c.id: ControllerSimulator(
                ControllerServer(
                    ControllerMemory(
                        controller_id=c.id,
                        doors=c.doors,
                        capacity=c.capacity,
                        timezone=spec.timezone,
                        clock=lambda: clock.now().timestamp(),
                    ),
                    transport=c.transport,
                    port=c.port,
                ),
                control_port=None,
            )
            for c in spec.controllers
            if c.kind == "modbus"
        }
        """The Modbus controllers."""
        self.uhppote: dict[str, UhppoteSimulator] = {}
        """The UHPPOTE controllers, each on its own UDP and TCP port."""
        for u in spec.controllers:
            if u.kind == "uhppote":
                assert u.serial is not None
                device = UhppoteController(
                    u.serial,
                    doors=u.doors,
                    capacity=u.capacity,
                    event_capacity=u.events,
                    timezone=spec.timezone,
                    clock=lambda: clock.now().timestamp(),
                )
                self.uhppote[u.id] = UhppoteSimulator(
                    UhppoteServer([device], port=u.port), control_port=None
                )
        self.control: ControlServer | None = None
        if control_port is not None:
            self.control = ControlServer(port=control_port)
            self._register(self.control)

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        started: list[StationSimulator | ControllerSimulator | UhppoteSimulator] = []
        sims: list[StationSimulator | ControllerSimulator | UhppoteSimulator] = [
            *self.stations.values(),
            *self.controllers.values(),
            *self.uhppote.values(),
        ]
        try:
            for sim in sims:
                await sim.start()
                started.append(sim)
            if self.control is not None:
                await self.control.start()
        except BaseException:
            for sim in reversed(started):
                await sim.close()
            raise

    async def close(self) -> None:
        if self.control is not None:
            await self.control.close()
        for station in self.stations.values():
            await station.close()
        for controller in self.controllers.values():
            await controller.close()
        for uhppote in self.uhppote.values():
            await uhppote.close()

    async def __aenter__(self) -> SimulatedSite:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ for the gateway

    def station_devices(self) -> list[dict[str, Any]]:
        """``[[stations]]`` tables of a gateway configuration reaching these stations."""
        return [
            {
                "id": sid,
                "driver": "serial-station",
                "options": {"port": sim.pty_path, "baudrate": 115200},
                "operated": sim.config.mounting.name.lower() == "desk",
            }
            for sid, sim in self.stations.items()
        ]

    def controller_devices(self) -> list[dict[str, Any]]:
        """``[[controllers]]`` tables of a gateway configuration reaching these controllers."""
        devices = [
            {"id": cid, "driver": "modbus-door", "options": sim.driver_options()}
            for cid, sim in self.controllers.items()
        ]
        devices += [
            {
                "id": cid,
                "driver": "uhppote-door",
                "options": {
                    **sim.driver_options(),
                    "bind": "127.0.0.1",
                    "listen": "127.0.0.1:0",  # events pushed to the gateway, on a free port
                },
            }
            for cid, sim in self.uhppote.items()
        ]
        order = [c.id for c in self.spec.controllers]
        return sorted(devices, key=lambda d: order.index(d["id"]))

    # ------------------------------------------------------------------ operations

    def station(self, station_id: str) -> StationSimulator:
        try:
            return self.stations[station_id]
        except KeyError:
            raise LookupError(
                f"station: no station {station_id!r} (stations: {', '.join(self.stations)})"
            ) from None

    def controller(self, controller_id: str) -> ControllerSimulator | UhppoteSimulator:
        """The simulator of a controller of any kind."""
        found = self.controllers.get(controller_id) or self.uhppote.get(controller_id)
        if found is None:
            known = ", ".join([*self.controllers, *self.uhppote])
            raise LookupError(
                f"controller: no controller {controller_id!r} (controllers: {known})"
            )
        return found

    def insert(self, station_id: str, serial: str) -> None:
        """Put key ``serial`` into a station (creating the virtual key if it is new)."""
        if serial not in self.world.registry:
            self.world.add_key(serial)
        self.station(station_id).device.insert(serial)

    def remove(self, station_id: str) -> str:
        return self.station(station_id).device.remove().serial

    def visit(self, serial: str, cylinder: int) -> dict[str, Any]:
        """Turn key ``serial`` in ``cylinder``: the cylinder decides offline."""
        return self.world.visit(serial, cylinder).as_dict()

    async def present(self, controller_id: str, credential: int, door: int) -> dict[str, Any]:
        """Present a credential at a door's reader: ``{granted, reason, ...}``."""
        sim = self.controller(controller_id)
        if isinstance(sim, UhppoteSimulator):
            return await sim.present(credential, door)
        return await sim.present(credential, door)

    async def power_loss(self, controller_id: str) -> Any:
        """A controller loses its power and its memory."""
        sim = self.controller(controller_id)
        if isinstance(sim, UhppoteSimulator):
            return await sim.power_loss()
        return await sim.power_loss()

    # ------------------------------------------------------------------ control commands

    def _register(self, server: ControlServer) -> None:
        async def status() -> dict[str, Any]:
            return {
                "timezone": self.spec.timezone,
                "clock": self.world.clock.now().isoformat(),
                "stations": {
                    sid: {
                        "pty": s.pty_path,
                        "mounting": s.config.mounting.name.lower(),
                        "key": s.device.key.serial if s.device.key else None,
                    }
                    for sid, s in self.stations.items()
                },
                "controllers": {
                    **{cid: c.describe() for cid, c in self.controllers.items()},
                    **{cid: {"kind": "uhppote", **u.describe()} for cid, u in self.uhppote.items()},
                },
                "cylinders": self.spec.cylinders(),
                "keys": sorted(k.serial for k in self.world.registry),
            }

        async def insert(station: str, serial: str) -> str:
            self.insert(station, str(serial))
            return f"key {serial} inserted in {station}"

        async def remove(station: str) -> str:
            return f"key {self.remove(station)} removed from {station}"

        async def visit(serial: str, cylinder: Any) -> dict[str, Any]:
            return self.visit(str(serial), parse_cylinder_id(cylinder))

        async def present(controller: str, credential: Any, door: Any) -> dict[str, Any]:
            return await self.present(controller, credential, door)

        async def power_loss(controller: str) -> Any:
            return await self.power_loss(controller)

        async def add_key(serial: str) -> dict[str, Any]:
            return self.world.add_key(str(serial)).summary()

        async def keys() -> list[dict[str, Any]]:
            return [k.summary() for k in self.world.registry]

        async def key(serial: str) -> dict[str, Any]:
            return self.world.registry.get(str(serial)).summary()

        async def cylinder(cylinder: Any, limit: int = 20) -> dict[str, Any]:
            return self.world.cylinder(parse_cylinder_id(cylinder)).summary(limit=limit)

        async def set_time(iso: str) -> str:
            return self.world.clock.set_iso(iso).isoformat()

        async def reset_clock() -> str:
            self.world.clock.reset()
            return self.world.clock.now().isoformat()

        async def station_fault(station: str, kind: str, **params: Any) -> Any:
            return self.station(station).faults.set(kind, **params)

        async def controller_fault(controller: str, kind: str, **params: Any) -> Any:
            return await self.controller(controller).fault(kind, **params)

        for name, fn, doc in (
            ("status", status, "status(): every device, the clock and the keys"),
            ("insert", insert, "insert(station, serial): put a key into a station"),
            ("remove", remove, "remove(station): pull the key out of a station"),
            ("visit", visit, "visit(serial, cylinder): turn a key in a cylinder"),
            ("present", present, "present(controller, credential, door): present a tag"),
            ("power_loss", power_loss, "power_loss(controller): the controller forgets all"),
            ("add_key", add_key, "add_key(serial): a new blank key"),
            ("keys", keys, "keys(): every key"),
            ("key", key, "key(serial): one key's image summary"),
            ("cylinder", cylinder, "cylinder(cylinder, limit=20): blacklist and events"),
            ("set_time", set_time, "set_time(iso): move the site's clock"),
            ("reset_clock", reset_clock, "reset_clock(): back to real time"),
            ("station_fault", station_fault, "station_fault(station, kind, ...): inject"),
            ("controller_fault", controller_fault, "controller_fault(controller, kind, ...)"),
        ):
            server.register(name, fn, doc)


async def run_site(spec: SiteSpec, *, control_port: int) -> None:
    """Run a site until SIGINT or SIGTERM, printing where each device is reachable."""
    import asyncio
    import json
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with SimulatedSite(spec, control_port=control_port) as site:
            assert site.control is not None
            print(
                json.dumps(
                    {
                        "control": f"127.0.0.1:{site.control.port}",
                        "stations": site.station_devices(),
                        "controllers": site.controller_devices(),
                    }
                ),
                flush=True,
            )
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

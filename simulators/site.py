"""A whole simulated site in one process: key stations on pseudo-terminals, offline cylinders,
virtual keys, Modbus door controllers, UHPPOTE access controllers and OSDP readers (lockgate
itself is their panel), declared in a site file and driven through one control interface.

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

    [[controllers]]
    id = "osdp-hut"
    kind = "osdp"                         # OSDP readers on one RS-485 bus (a pseudo-terminal)
    doors = 1                             # one reader per door, addresses 101, 102, ...

    [[spaces]]                            # maps the site to the spaces of the store
    id = "sp-office"
    name = "Office entrance"
    cylinders = [200101]                  # offline cylinders created in this site
    doors = [{ controller = "ctrl-office", door = 1 }]

Control commands (JSON lines, :mod:`simulators.control`): ``status()``, ``insert(station,
serial)``, ``remove(station)``, ``visit(serial, cylinder)``, ``present(controller, credential,
door)``, ``power_loss(controller)``, ``add_key(serial)``, ``keys()``, ``key(serial)``,
``cylinder(cylinder, limit=20)``, ``set_time(iso)``, ``reset_clock()``, ``station_fault(station,
kind, ...)``, ``controller_fault(controller, kind, ...)``, ``reader(controller, door, what)``
(an OSDP reader's tamper switch, power, link).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
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

from drivers.osdp.keys import Scbk, store_keys
from drivers.serialstation.codes import Mounting
from simulators.control import ControlServer
from simulators.controller.controls import ControllerSimulator
from simulators.controller.memory import ControllerMemory
from simulators.controller.server import ControllerServer
from simulators.osdp import OsdpSimulator, ReaderSpec
from simulators.station.device import StationConfig
from simulators.station.faults import FaultPlan
from simulators.station.simulator import SimWorld, StationSimulator, parse_cylinder_id
from simulators.uhppote import UhppoteController, UhppoteServer, UhppoteSimulator

DEFAULT_SITE = Path(__file__).with_name("sites") / "demo.toml"
OSDP_MAX_READERS = 8
OSDP_FIRST_ADDRESS = 101
READER_EVENTS = ("tamper", "tamper_cleared", "power_failure", "power_restored", "offline", "online")
OSDP_PRESENT_S = 10.0
"""How long a card at an OSDP reader waits for the panel's decision (its LED or relay)."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StationSpec(_Spec):
    id: Annotated[str, Field(min_length=1, max_length=32)]
    mounting: Literal["desk", "wall"] = "desk"
    baudrate: Annotated[int, Field(ge=0, le=4_000_000)] = 115200


class ControllerSpec(_Spec):
    id: Annotated[str, Field(min_length=1, max_length=32)]
    kind: Literal["modbus", "uhppote", "osdp"] = "modbus"
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
        if self.kind == "osdp" and self.doors > OSDP_MAX_READERS:
            raise ValueError(f"doors: an osdp bus has at most {OSDP_MAX_READERS} readers")
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

    def __init__(
        self, spec: SiteSpec, *, control_port: int | None = 0, folder: Path | None = None
    ) -> None:
        self.spec = spec
        self._own_folder = folder is None
        self.folder = folder or Path(tempfile.mkdtemp(prefix="lockgate-site-"))
        """Where the OSDP readers' key files and their panels' state directories are (a
        temporary folder, removed on close, unless given)."""
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
        self.osdp: dict[str, OsdpSimulator] = {}
        """The OSDP buses, each a pseudo-terminal with its readers (secure channel on, each
        reader on its own key from the bus's key file)."""
        for o in spec.controllers:
            if o.kind == "osdp":
                keys = {OSDP_FIRST_ADDRESS + i: Scbk.generate() for i in range(o.doors)}
                key_file = self.folder / f"osdp-{o.id}-keys.json"
                store_keys(key_file, keys)
                self.osdp[o.id] = OsdpSimulator(
                    [ReaderSpec(a, k, serial_number=a) for a, k in keys.items()],
                    control_port=None,
                    key_file=key_file,
                )
        self.control: ControlServer | None = None
        if control_port is not None:
            self.control = ControlServer(port=control_port)
            self._register(self.control)

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        started: list[StationSimulator | ControllerSimulator | UhppoteSimulator | OsdpSimulator]
        started = []
        sims: list[StationSimulator | ControllerSimulator | UhppoteSimulator | OsdpSimulator] = [
            *self.stations.values(),
            *self.controllers.values(),
            *self.uhppote.values(),
            *self.osdp.values(),
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
        for bus in self.osdp.values():
            await bus.close()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

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
        devices += [
            {
                "id": cid,
                "driver": "osdp-reader",
                "options": {
                    **bus.driver_options(),
                    "key_file": str(bus.key_file),
                    "state_dir": str(self.folder / f"osdp-{cid}"),
                    "timezone": self.spec.timezone,
                    "retry_s": 1.0,
                },
            }
            for cid, bus in self.osdp.items()
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

    def controller(
        self, controller_id: str
    ) -> ControllerSimulator | UhppoteSimulator | OsdpSimulator:
        """The simulator of a controller of any kind."""
        found: ControllerSimulator | UhppoteSimulator | OsdpSimulator | None = (
            self.controllers.get(controller_id)
            or self.uhppote.get(controller_id)
            or self.osdp.get(controller_id)
        )
        if found is None:
            known = ", ".join([*self.controllers, *self.uhppote, *self.osdp])
            raise LookupError(f"controller: no controller {controller_id!r} (controllers: {known})")
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
        if isinstance(sim, OsdpSimulator):
            return await self._present_osdp(sim, credential, door)
        if isinstance(sim, UhppoteSimulator):
            return await sim.present(credential, door)
        return await sim.present(credential, door)

    async def _present_osdp(self, bus: OsdpSimulator, credential: int, door: int) -> dict[str, Any]:
        """A card at the reader of ``door``: granted when the panel pulses the reader's output,
        denied when it shows red (the panel decides; this waits for what it tells the
        reader)."""
        if not 1 <= door <= len(bus.readers):
            raise LookupError(f"door: the bus has doors 1..{len(bus.readers)}, got {door}")
        reader = bus.readers[OSDP_FIRST_ADDRESS + door - 1]
        reader.commands(clear=True)
        if not reader.present(credential):
            return {"granted": False, "reason": "reader_offline"}
        async with asyncio.timeout(OSDP_PRESENT_S):
            while True:
                for c in reader.commands():
                    if c["command"] == "output":
                        return {"granted": True, "reason": "granted"}
                    if c.get("on_color_name") == "red":
                        return {"granted": False, "reason": "denied"}
                await asyncio.sleep(0.01)

    async def reader_event(self, controller_id: str, door: int, what: str) -> dict[str, Any]:
        """Something happens at the OSDP reader of ``door``: ``what`` in
        :data:`READER_EVENTS`."""
        bus = self.controller(controller_id)
        if not isinstance(bus, OsdpSimulator):
            raise LookupError(f"controller: {controller_id} has no OSDP readers")
        if what not in READER_EVENTS:
            raise LookupError(f"what: must be one of {', '.join(READER_EVENTS)}, got {what!r}")
        if not 1 <= door <= len(bus.readers):
            raise LookupError(f"door: the bus has doors 1..{len(bus.readers)}, got {door}")
        address = OSDP_FIRST_ADDRESS + door - 1
        match what:
            case "tamper" | "tamper_cleared":
                return await bus.tamper(address, what == "tamper")
            case "power_failure" | "power_restored":
                return await bus.power(address, what == "power_restored")
            case "offline":
                return await bus.offline(address)
            case _:
                return await bus.online(address)

    async def power_loss(self, controller_id: str) -> Any:
        """A controller loses its power and its memory (an OSDP bus: its readers go off the
        bus for a few seconds; the panel's state is lockgate's own)."""
        sim = self.controller(controller_id)
        if isinstance(sim, OsdpSimulator):
            return [await sim.offline(a, 3.0) for a in sim.readers]
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
                    **{cid: {"kind": "osdp", **o.describe()} for cid, o in self.osdp.items()},
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
            sim = self.controller(controller)
            if isinstance(sim, OsdpSimulator):
                raise LookupError(
                    f"controller: {controller} is an OSDP bus; use reader(controller, door, what)"
                )
            return await sim.fault(kind, **params)

        async def reader(controller: str, door: Any, what: str) -> Any:
            return await self.reader_event(controller, int(door), what)

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
            ("reader", reader, f"reader(controller, door, what): what in {READER_EVENTS}"),
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

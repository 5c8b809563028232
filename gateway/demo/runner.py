"""``lockgate demo``: sets up the embedded default — a SQLite file in ``./demo``, the simulated
site shipped with lockgate, a private Mosquitto when the binary is installed — runs the story,
prints the summary, and (without ``--once``) keeps everything running for you to explore."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy.orm import Session

from drivers.base import DeviceConfig
from drivers.registry import load_key_station
from gateway.config import Settings, WebSettings
from gateway.core import Core
from gateway.demo.broker import BrokerUnavailable, PrivateMosquitto
from gateway.demo.central import Central, DirectCentral, MqttCentral
from gateway.demo.narrator import Narrator
from gateway.demo.states import show_states
from gateway.demo.story import DESK, WALL, Actors, Story, run_story
from gateway.runtime import Gateway
from gateway.store.database import default_sqlite_url
from gateway.sync.station import KeyVisit, StationWorker
from gateway.web import KeyDesk, WebService, web_service
from simulators.site import DEFAULT_SITE, SimulatedSite, load_site


class StoryEvents:
    """A sync sink that keeps the events for the narration."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def availability(self, session: Session, device_id: str, online: bool, reason: str) -> None:
        pass

    def credential_state(self, session: Session, core: Core, number: str) -> None:
        pass

    def event(self, session: Session, kind: str, body: dict[str, Any]) -> None:
        self.events.append((kind, body))


@dataclass
class DemoSetup:
    """The running demo: site, gateway, broker, workers."""

    settings: Settings
    site: SimulatedSite
    gateway: Gateway
    broker: PrivateMosquitto | None
    stations: dict[str, StationWorker]
    story_events: StoryEvents
    extra: list[Any] = field(default_factory=list)
    desk: KeyDesk | None = None

    @property
    def web(self) -> WebService | None:
        """The web console, when it is served."""
        return next((s for s in self.gateway.services if isinstance(s, WebService)), None)


def fresh_folder(folder: Path) -> None:
    """Remove the previous run's files: every demo starts from an empty database."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def demo_settings(db_url: str, site: SimulatedSite, broker: PrivateMosquitto | None) -> Settings:
    stations = site.station_devices()
    for s in stations:
        s["operated"] = s["id"] == DESK  # the desk station is the operator's
    return Settings.model_validate(
        {
            "database": {"url": db_url},
            "mqtt": {
                "enabled": broker is not None,
                **({"host": broker.host, "port": broker.port} if broker else {}),
                "client_id": "lockgate-demo-gateway",
            },
            "sync": {"retry_initial_s": 0.1, "retry_max_s": 2.0, "tick_s": 0.5},
            "stations": stations,
            "controllers": site.controller_devices(),
        }
    )


@asynccontextmanager
async def demo_setup(
    folder: Path,
    console: Console,
    *,
    control: bool,
    use_broker: bool = True,
    web_address: str | None = None,
) -> AsyncIterator[DemoSetup]:
    """Fresh database in ``folder``, the demo site, a broker if possible, the gateway; with
    ``web_address`` the web console too (on a free port when that one is taken)."""
    from gateway.compose import build_gateway, sync_service

    db_url = default_sqlite_url(folder / "lockgate-demo.db")
    broker: PrivateMosquitto | None = None
    if use_broker:
        try:
            broker = PrivateMosquitto()
            broker.start()
            console.print(f"MQTT: a private Mosquitto on {broker.host}:{broker.port}")
        except BrokerUnavailable as exc:
            broker = None
            console.print(
                f"MQTT: [yellow]off[/] ({exc}); the central system's requests go "
                "straight to the core instead"
            )
    spec = load_site(DEFAULT_SITE)
    try:
        async with SimulatedSite(spec, control_port=0 if control else None) as site:
            settings = demo_settings(db_url, site, broker)
            story_events = StoryEvents()
            key_desk = KeyDesk()
            web = _web_settings(web_address) if web_address else None
            gateway = build_gateway(
                settings,
                extra_sinks=[story_events],
                extra_services=[web_service(web, desk=key_desk)] if web else [],
            )
            sync = sync_service(gateway)
            assert sync is not None
            desk = next(d for d in settings.stations if d.id == DESK)
            desk_worker = StationWorker(
                gateway,
                DESK,
                partial(load_key_station, DeviceConfig(desk.id, desk.driver, dict(desk.options))),
                sync.sink,
                decide=_operator_confirms(console),
                on_progress=key_desk.on_progress,
                on_visit=key_desk.on_visit,
            )
            await gateway.start()
            try:
                await desk_worker.start()
                stations = {DESK: desk_worker, WALL: sync.stations[WALL]}
                setup = DemoSetup(settings, site, gateway, broker, stations, story_events)
                setup.desk = key_desk
                yield setup
            finally:
                await desk_worker.stop()
                await gateway.stop()
    finally:
        if broker is not None:
            broker.cleanup()


DEMO_PASSWORD = "lockgate-demo"
"""The password of every demo operator in the web console (a demo, not a site)."""


def _web_settings(address: str) -> WebSettings:
    """The console on ``address``, or on a free port of its host when that one is taken."""
    web = WebSettings(enabled=True, address=address)
    host, port = web.host_port()
    try:
        with socket.create_server((host, port)):
            pass
    except OSError:
        web = WebSettings(enabled=True, address=f"{host}:0")
    return web


def demo_logins(gateway: Gateway) -> list[tuple[str, str]]:
    """Give every demo operator the demo password (on the core thread); (name, role) of each."""
    from gateway.auth import manage
    from gateway.auth import operators as operator_store
    from gateway.auth.authorizer import Authorizer
    from gateway.auth.passwords import hash_password

    core = gateway.core
    hashed = hash_password(DEMO_PASSWORD)

    def work(s: Session) -> list[tuple[str, str]]:
        out = []
        authorizer = core.authorizer
        assert isinstance(authorizer, Authorizer)
        admin = Actors().administrator
        for op in operator_store.all_operators(s):
            manage.change_operator(
                s, authorizer, admin, op.name, at=core.clock(), password_hash=hashed
            )
            out.append((op.name, op.role))
        return out

    return core.transaction(work)


def _operator_confirms(console: Console) -> Any:
    async def decide(visit: KeyVisit) -> bool:
        console.print(
            f"  [dim]operator: key {visit.serial} in {DESK}, "
            f"{len(visit.planned.cylinders)} cylinders to write — confirmed[/]"
        )
        return True

    return decide


async def run_demo(
    folder: Path, console: Console, *, once: bool, use_broker: bool = True
) -> dict[str, Any]:
    """Run the story; return the summary (``ok``, ``steps``, ``failed``, ``seconds``)."""
    narrator = Narrator(console)
    async with demo_setup(
        folder,
        console,
        control=not once,
        use_broker=use_broker,
        web_address=None if once else "127.0.0.1:8080",
    ) as setup:
        central: Central
        async with contextlib.AsyncExitStack() as stack:
            if setup.broker is not None:
                central = await stack.enter_async_context(
                    MqttCentral(
                        setup.broker.host, setup.broker.port, setup.settings.mqtt.base_topic
                    )
                )
            else:
                central = DirectCentral(setup.gateway, Actors().central)
            story = Story(
                setup.gateway,
                setup.site,
                central,
                setup.stations,
                folder,
                narrator,
                setup.story_events.events,
            )
            await run_story(story)
            await setup.gateway.call(show_states, setup.gateway.core, console)
            summary = narrator.summary()
            if not once:
                await _open_console(console, setup)
                _explore(console, setup, folder)
                await _wait_for_interrupt()
    return summary


def lockgate_command(executable: str | None = None, path: str | None = None) -> str:
    """How to start this lockgate from a shell, as printed for the user to copy: ``lockgate``
    when the ``lockgate`` found on ``path`` (default ``$PATH``) is this one, else the full path
    of the ``lockgate`` beside the running Python (a virtual environment not activated, as
    after ``make demo``), else ``PYTHON -m gateway.cli``."""
    here = Path(executable or sys.executable).parent / "lockgate"
    found = shutil.which("lockgate", path=path)
    if here.is_file():
        if found is not None and Path(found).resolve() == here.resolve():
            return "lockgate"
        return shlex.quote(str(here.absolute()))
    return f"{shlex.quote(executable or sys.executable)} -m gateway.cli"


def explore_lines(
    *,
    db_url: str,
    control_port: int | None,
    broker_port: int | None,
    base_topic: str,
    folder: Path,
    lockgate: str,
    path: str | None = None,
) -> list[str]:
    """What the running demo suggests trying, each line a command that works as printed
    (the MQTT tools only when they are installed)."""
    db = shlex.quote(db_url)
    lines = [
        "",
        "The site and the gateway keep running. Try:",
        f"  {lockgate} --db {db} explain 100000004 cylinder:200101",
        f"  {lockgate} --db {db} report exposure",
    ]
    if control_port is not None:
        call = f"  {lockgate} sim call --port {control_port}"
        lines += [
            f"{call} insert station=wall-hallsberg serial=100000002",
            f"{call} remove station=wall-hallsberg",
            f"{call} visit serial=100000002 cylinder=200201",
            f"{call} present controller=ctrl-office credential=4000001 door=1",
        ]
    if broker_port is not None:
        sub = shutil.which("mosquitto_sub", path=path)
        pub = shutil.which("mosquitto_pub", path=path)
        if sub and pub:
            lines += [
                f"  {shlex.quote(sub)} -p {broker_port} -t '{base_topic}/v1/#' -v",
                f"  {shlex.quote(pub)} -p {broker_port} -t {base_topic}/v1/request/id06_unblock "
                '-m \'{"request_id": "try-1", "card_number": "ID06AN0001"}\'',
            ]
        else:
            lines.append(
                f"  the broker listens on 127.0.0.1:{broker_port} (install mosquitto-clients "
                "for mosquitto_sub and mosquitto_pub)"
            )
    lines += [f"  files: {folder.absolute()}/ (database, manifests, receipts)"]
    lines.append("Ctrl-C stops everything.")
    return lines


def _explore(console: Console, setup: DemoSetup, folder: Path) -> None:
    lines = explore_lines(
        db_url=setup.settings.database.url,
        control_port=setup.site.control.port if setup.site.control else None,
        broker_port=setup.broker.port if setup.broker is not None else None,
        base_topic=setup.settings.mqtt.base_topic,
        folder=folder,
        lockgate=lockgate_command(),
    )
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True, markup=False)


async def _open_console(console: Console, setup: DemoSetup) -> None:
    """Hand the desk station to the console's key desk and print where to sign in."""
    web = setup.web
    if web is None or setup.desk is None:
        return
    setup.stations[DESK].decide = setup.desk.decide
    setup.desk.station(DESK)
    logins = await setup.gateway.call(demo_logins, setup.gateway)
    console.print(f"Web console: {web.url}  (every operator's password: {DEMO_PASSWORD})")
    for name, role in logins:
        console.print(f"  sign in as {name} ({role})", highlight=False)


async def _wait_for_interrupt() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

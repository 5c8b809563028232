"""``lockgate station``: the terminal flow of a programming-station operator.

Wait for a key; show its serial, holder, lifecycle state, whether it is active and every
reason it is not, and the change the gateway wants to write; write it on the operator's
confirmation (or refuse, with the reasons), showing progress and the verified result; then
wait for the next key. The station is unplugged or the key pulled early: say so plainly.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from drivers.base import DeviceConfig, WriteProgress
from drivers.registry import load_key_station
from gateway.cli.common import STATE, console, fail, local
from gateway.compose import build_desk_station
from gateway.config import DeviceSettings
from gateway.reports.holders import holder_of
from gateway.rules import DESCRIPTIONS
from gateway.sync.engine import worker_timing
from gateway.sync.station import KeyVisit, StationWorker


def _pick(station: str | None) -> DeviceSettings:
    stations = STATE.settings.stations
    if not stations:
        fail(
            "no station is configured: add a [[stations]] table to the configuration "
            "(see docs/configuration.md)"
        )
    if station is None:
        operated = [s for s in stations if s.operated] or stations
        if len(operated) > 1:
            fail(
                "several stations are configured; choose one with --station "
                + "|".join(s.id for s in operated),
                2,
            )
        return operated[0]
    for s in stations:
        if s.id == station:
            return s
    fail(
        f"--station: no station {station!r} is configured "
        f"(configured: {', '.join(s.id for s in stations)})",
        2,
    )


def describe(visit: KeyVisit, holder: str) -> None:
    """Print what the operator needs to decide about the key in the station."""
    state = visit.state
    console.rule(f"key {visit.serial}")
    if not visit.registered:
        console.print(
            f"[red]key {visit.serial} is not registered[/]: register its delivery "
            "(lockgate import manifest) before programming it"
        )
        return
    console.print(f"holder: {holder}")
    if state is None:
        return
    if state.active:
        console.print(
            "[green]ACTIVE[/]" + (f" until {local(state.window.end)}" if state.window else "")
        )
    else:
        console.print("[red]NOT ACTIVE[/]")
        for r in state.reasons:
            console.print(f"  [red]{r.value}[/]: {DESCRIPTIONS[r]}")
    for space, reason in state.denied:
        console.print(f"  not granted: {space} ({reason.value})")
    held = {str(a.cylinder) for a in visit.held.access} if visit.held.enabled else set()
    new = set(visit.planned.cylinders)
    if visit.planned.image.enabled:
        console.print(
            f"to write: {len(new)} cylinders"
            + (
                f", revalidate by {local(visit.planned.image.revalidate_by)}"
                if visit.planned.image.revalidate_by
                else ""
            )
            + (
                f", {len(visit.planned.image.blacklists)} blacklists to carry"
                if visit.planned.image.blacklists
                else ""
            )
        )
    else:
        console.print("to write: [red]an empty, disabled image[/] (the key will open nothing)")
    if added := sorted(new - held, key=int):
        console.print(f"  [green]+ {', '.join(added)}[/]")
    if removed := sorted(held - new, key=int):
        console.print(f"  [red]- {', '.join(removed)}[/]")


def station_command(
    station: Annotated[str | None, typer.Option(help="Station id from the configuration.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Write without asking.")] = False,
    once: Annotated[bool, typer.Option(help="Stop after the first key.")] = False,
) -> None:
    """Serve a programming station at a desk: activate and update keys as they are inserted."""
    device = _pick(station)
    asyncio.run(DeskConsole(device, yes=yes, once=once).run())


class DeskConsole:
    """The operator's terminal at one desk station: the station worker's callbacks (decide,
    progress, visit, event) print to the console; :meth:`run` serves until Ctrl-C (or the
    first key with ``once``)."""

    def __init__(self, device: DeviceSettings, *, yes: bool, once: bool) -> None:
        self.device = device
        self.yes = yes
        self.once = once
        self.settings = STATE.settings
        self.gateway, self.sink = build_desk_station(self.settings)
        self.done = asyncio.Event()
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} bytes"),
            console=console,
        )
        self.tasks: dict[str, TaskID] = {}

    # ------------------------------------------------------------------ worker callbacks

    async def decide(self, visit: KeyVisit) -> bool:
        """Show the key and what would be written; ask the operator (unless ``--yes``)."""
        holder = await self.gateway.call(holder_of, self.gateway.core.engine, visit.serial)
        describe(visit, holder)
        if self.yes:
            return True
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(None, input, "write this image to the key? [Y/n] ")
        return answer.strip().lower() in ("", "y", "yes", "j", "ja")

    def on_progress(self, visit: KeyVisit, p: WriteProgress) -> None:
        if visit.serial not in self.tasks:
            self.progress.start()
            self.tasks[visit.serial] = self.progress.add_task(
                f"writing {visit.serial}", total=p.total
            )
        self.progress.update(self.tasks[visit.serial], completed=p.done, total=p.total)

    def on_visit(self, visit: KeyVisit) -> None:
        if visit.serial in self.tasks:
            self.progress.stop()
            self.tasks.pop(visit.serial)
        console.print(outcome_line(visit))
        if visit.audit_new:
            console.print(f"collected {visit.audit_new} audit records")
        if self.once:
            self.done.set()

    def on_event(self, kind: str, serial: str) -> None:
        if kind == "removed":
            console.print(f"key {serial} removed; waiting for a key")

    # ------------------------------------------------------------------ serving

    def worker(self) -> StationWorker:
        device = self.device
        return StationWorker(
            self.gateway,
            device.id,
            lambda: load_key_station(DeviceConfig(device.id, device.driver, dict(device.options))),
            self.sink,
            decide=self.decide,
            on_visit=self.on_visit,
            on_progress=self.on_progress,
            on_event=self.on_event,
            timing=worker_timing(self.settings),
        )

    async def run(self) -> None:
        """Serve the station until Ctrl-C / SIGTERM (or the first key with ``once``)."""
        worker = self.worker()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.done.set)
        await self.gateway.start()
        try:
            await worker.start()
            console.print(f"station {self.device.id}: waiting for a key (Ctrl-C to stop)")
            await self._watch(worker)
        finally:
            await worker.stop()
            await self.gateway.stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    async def _watch(self, worker: StationWorker) -> None:
        """Say plainly when the station becomes unreachable, and when it is back."""
        last = ""
        while not self.done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.done.wait(), 0.5)
            if not worker.online and worker.last_error and worker.last_error != last:
                last = worker.last_error
                console.print(
                    f"[red]station {self.device.id} is not reachable[/]: {last}; "
                    "retrying (is it plugged in?)"
                )
            elif worker.online and last:
                last = ""
                console.print(f"station {self.device.id} is back; waiting for a key")


def outcome_line(visit: KeyVisit) -> str:
    """What happened to the key, in one line for the operator."""
    match visit.outcome:
        case "written":
            r = visit.result
            detail = (
                f" ({r.bytes_sent} bytes{', delta' if r.delta else ''}, {r.seconds * 1000:.0f} ms)"
                if r
                else ""
            )
            return f"[green]key {visit.serial} programmed and verified[/]{detail}"
        case "up_to_date":
            return f"key {visit.serial} already holds its image; nothing to write"
        case "declined":
            return f"key {visit.serial} left unchanged"
        case "pulled":
            return (
                f"[red]key {visit.serial} was pulled out before the write finished[/]: "
                "it keeps its old image; insert it again"
            )
        case "unknown":
            return f"[red]key {visit.serial} is not registered; nothing written[/]"
        case _:
            return f"[red]key {visit.serial}: {visit.outcome} {visit.error or ''}[/]"

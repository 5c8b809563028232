"""A complete simulated controller: memory, Modbus server and control interface.

:class:`ControllerSimulator` is what a test, a benchmark or a site runner hosts, several per
process if need be. Its control commands (JSON lines, see :mod:`simulators.control`):

``present(credential, door)``
    A credential is presented at a reader; returns ``{granted, reason, sequence}``.
``door(door, open=None)``
    A door's state; ``open`` true/false moves the door (opening a locked door is forced).
``status()``
    The whole controller state, and where it listens.
``power_loss()``
    Memory lost (allow-list, schedules, events, door modes), new generation.
``set_time(at, frozen=false)``
    Set the controller's clock to ISO-8601 instant ``at``; ``frozen`` stops it there.
``fault(kind, ...)``
    ``delay`` (``seconds``: every reply that late), ``drop`` (TCP: close the client
    connections; RTU: cut the line for ``seconds``, default 1), ``restart`` (power loss and a
    server restart), ``reject_commits`` / ``corrupt_commits`` (``enabled``, default true),
    ``commit_busy`` (``seconds`` a commit stays busy), ``clear`` (remove every fault).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from simulators.control import ControlledSimulator, ControlServer, bool_arg, int_arg, number_arg
from simulators.controller.server import ControllerServer

FAULT_KINDS = (
    "delay",
    "drop",
    "restart",
    "reject_commits",
    "corrupt_commits",
    "commit_busy",
    "clear",
)


def _seconds_arg(name: str, value: Any, high: float = 3600.0) -> float:
    return number_arg(name, value, 0, high, what="a number of seconds")


class ControllerSimulator(ControlledSimulator):
    """A simulated door controller: its Modbus server and (optionally) a control server.

    ``control_port`` None runs no control server (in-process users call the methods)::

        memory = ControllerMemory(controller_id="gate-1")
        async with ControllerSimulator(ControllerServer(memory, transport="tcp")) as sim:
            options = sim.driver_options()
    """

    def __init__(
        self,
        server: ControllerServer,
        *,
        control_host: str = "127.0.0.1",
        control_port: int | None = 0,
    ) -> None:
        self.server = server
        self.memory = server.memory
        super().__init__(server, control_host=control_host, control_port=control_port)

    def driver_options(self) -> dict[str, object]:
        """Options for :class:`drivers.modbusdoor.ModbusDoorController` reaching this one."""
        return self.server.describe()

    def describe(self) -> dict[str, object]:
        """Where the simulator listens (printed by the command line)."""
        out: dict[str, object] = {"controller_id": self.memory.controller_id}
        out.update(self.server.describe())
        if self.server.transport == "rtu":
            out["device"] = self.server.device_path
        if self.control is not None:
            out["control_port"] = self.control.port
        return out

    # ------------------------------------------------------------------ commands

    def _register(self, control: ControlServer) -> None:
        control.register("present", self.present, "present(credential, door): grant or deny")
        control.register("door", self.door, "door(door, open=None): state; open moves the door")
        control.register("status", self.status, "status(): the whole controller state")
        control.register("power_loss", self.power_loss, "power_loss(): memory lost")
        control.register("set_time", self.set_time, "set_time(at, frozen=false): set the clock")
        control.register("fault", self.fault, f"fault(kind, ...): kind in {FAULT_KINDS}")

    async def present(self, credential: Any, door: Any) -> dict[str, Any]:
        decision = self.memory.present(int_arg("credential", credential), int_arg("door", door))
        return {
            "granted": decision.granted,
            "reason": decision.reason.name.lower(),
            "sequence": decision.sequence,
        }

    async def door(self, door: Any, open: Any = None) -> dict[str, object]:
        number = int_arg("door", door)
        if open is not None:
            self.memory.set_door_open(number, bool_arg("open", open))
        return self.memory.door_report(number)

    async def status(self) -> dict[str, object]:
        report = self.memory.report()
        report["listening"] = self.server.describe()
        return report

    async def power_loss(self) -> dict[str, int]:
        return {"generation": self.memory.power_loss()}

    async def set_time(self, at: Any, frozen: Any = False) -> dict[str, str]:
        if not isinstance(at, str):
            raise ValueError(f"at: must be an ISO-8601 string, got {at!r}")
        try:
            instant = datetime.fromisoformat(at)
        except ValueError:
            raise ValueError(f"at: {at!r} is not an ISO-8601 date and time") from None
        if instant.tzinfo is None:
            raise ValueError("at: must carry a time zone (for example ...Z or +01:00)")
        self.memory.set_time(instant.timestamp(), frozen=bool_arg("frozen", frozen))
        return {"clock": self.memory.local_time().isoformat()}

    async def fault(self, kind: Any, **params: Any) -> dict[str, object]:
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind: must be one of {', '.join(FAULT_KINDS)}, got {kind!r}")
        allowed = {
            "delay": {"seconds"},
            "drop": {"seconds"},
            "reject_commits": {"enabled"},
            "corrupt_commits": {"enabled"},
            "commit_busy": {"seconds"},
        }.get(kind, set())
        extra = sorted(set(params) - allowed)
        if extra:
            raise ValueError(f"{extra[0]}: not an argument of fault {kind!r}")
        faults = self.memory.faults
        if kind == "delay":
            self.server.delay_s = _seconds_arg("seconds", params.get("seconds", 0.0), 60.0)
        elif kind == "drop":
            if self.server.transport == "tcp":
                if "seconds" in params:
                    raise ValueError("seconds: a TCP drop closes the connections; no duration")
                self.server.drop_connections()
            else:
                self.server.cut_line(_seconds_arg("seconds", params.get("seconds", 1.0)))
        elif kind == "restart":
            await self.server.restart()
        elif kind == "reject_commits":
            faults.reject_commits = bool_arg("enabled", params.get("enabled", True))
        elif kind == "corrupt_commits":
            faults.corrupt_commits = bool_arg("enabled", params.get("enabled", True))
        elif kind == "commit_busy":
            faults.commit_busy_s = _seconds_arg("seconds", params.get("seconds", 0.0))
        elif kind == "clear":
            faults.clear()
            self.server.delay_s = 0.0
            if self.server.transport == "rtu":
                with contextlib.suppress(ValueError):  # no pty link: no line to restore
                    self.server.cut_line(0)
        return self.faults()

    def faults(self) -> dict[str, object]:
        f = self.memory.faults
        return {
            "delay_s": self.server.delay_s,
            "reject_commits": f.reject_commits,
            "corrupt_commits": f.corrupt_commits,
            "commit_busy_s": f.commit_busy_s,
            "generation": self.memory.generation,
        }


__all__ = ["FAULT_KINDS", "ControllerSimulator"]

"""Simulated UHPPOTE controllers with their control interface.

:class:`UhppoteSimulator` hosts a :class:`~simulators.uhppote.server.UhppoteServer` and the
JSON-lines control server (:mod:`simulators.control`). Commands (``serial`` may be left out
when the simulator runs one controller):

``present(card, door, serial, direction=1, pin=None)``
    A card at a reader: granted or denied by the card table, its dates, PIN, the door's
    permission and time profile and the door's control mode. Returns
    ``{granted, reason, index}``.
``door(door, serial, open=None)``
    A door's state; ``open`` true/false moves the leaf (opening a door that is not unlocked
    raises a forced-open alarm).
``button(door, serial)``, ``held_open(door, serial)``
    The exit button; an "open too long" alarm.
``status(serial=None)``
    The controller's state (all controllers without ``serial``) and where they listen.
``power_loss(serial)``
    The volatile memory is lost (see :meth:`UhppoteController.power_loss`).
``set_time(at, serial, frozen=false)``, ``drift(seconds, serial)``
    Set the controller's clock to ISO-8601 ``at`` (``frozen`` stops it there); move it by
    ``seconds`` (clock drift).
``fault(kind, ...)``
    ``drop`` (``count`` replies, -1 all), ``delay`` (``seconds``), ``malformed`` (``how`` in
    short/som/function/serial/garbage, ``count``), ``replay_event`` (``serial``: send an old
    event to the listener again), ``raw_event`` (``serial``, ``hex``: send these bytes to the
    listener), ``clear``.
``requests(limit=100)``
    The last requests received (serial, function, argument), oldest first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from simulators.control import ControlledSimulator, ControlServer, bool_arg, int_arg, number_arg
from simulators.uhppote.controller import UhppoteController
from simulators.uhppote.server import MALFORMED_KINDS, UhppoteServer

FAULT_KINDS = ("drop", "delay", "malformed", "replay_event", "raw_event", "clear")


class UhppoteSimulator(ControlledSimulator):
    """Simulated controllers on the wire plus (``control_port`` not None) a control server."""

    def __init__(
        self,
        server: UhppoteServer,
        *,
        control_host: str = "127.0.0.1",
        control_port: int | None = 0,
    ) -> None:
        self.server = server
        super().__init__(server, control_host=control_host, control_port=control_port)

    def controller(self, serial: Any = None) -> UhppoteController:
        """The controller ``serial`` (the only one when None)."""
        if serial is None:
            if len(self.server.controllers) != 1:
                raise ValueError("serial: required, this simulator runs several controllers")
            return next(iter(self.server.controllers.values()))
        number = int_arg("serial", serial)
        try:
            return self.server.controllers[number]
        except KeyError:
            known = ", ".join(str(s) for s in sorted(self.server.controllers))
            raise ValueError(f"serial: no controller {number} (have {known})") from None

    def driver_options(self, serial: int | None = None) -> dict[str, object]:
        """Options for :class:`drivers.uhppote.UhppoteDoorController` reaching a controller."""
        controller = self.controller(serial)
        return {
            "serial": controller.serial,
            "address": f"{self.server.host}:{self.server.port}",
            "doors": controller.door_count,
            "capacity": controller.capacity,
            "timezone": controller.timezone,
        }

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = dict(self.server.describe())
        if self.control is not None:
            out["control_port"] = self.control.port
        return out

    # ------------------------------------------------------------------ commands

    def _register(self, control: ControlServer) -> None:
        control.register("present", self.present, "present(card, door, serial, direction, pin)")
        control.register("door", self.door, "door(door, serial, open=None): state / move")
        control.register("button", self.button, "button(door, serial): exit button")
        control.register("held_open", self.held_open, "held_open(door, serial): alarm")
        control.register("status", self.status, "status(serial=None): controller state")
        control.register("power_loss", self.power_loss, "power_loss(serial): memory lost")
        control.register("set_time", self.set_time, "set_time(at, serial, frozen=false)")
        control.register("drift", self.drift, "drift(seconds, serial): clock drift")
        control.register("fault", self.fault, f"fault(kind, ...): kind in {FAULT_KINDS}")
        control.register("requests", self.requests, "requests(limit=100): last requests")

    async def present(
        self,
        card: Any,
        door: Any,
        serial: Any = None,
        direction: Any = 1,
        pin: Any = None,
    ) -> dict[str, Any]:
        controller = self.controller(serial)
        decision = controller.present(
            int_arg("card", card),
            int_arg("door", door),
            direction=int_arg("direction", direction),
            pin=None if pin is None else int_arg("pin", pin),
        )
        return {
            "granted": decision.granted,
            "reason": decision.reason.name.lower(),
            "index": decision.index,
        }

    async def door(self, door: Any, serial: Any = None, open: Any = None) -> dict[str, object]:
        controller = self.controller(serial)
        number = int_arg("door", door)
        if open is not None:
            controller.move_door(number, bool_arg("open", open))
        doors = controller.report()["doors"]
        assert isinstance(doors, dict)
        if number not in doors:
            raise ValueError(f"door: must be in 1..{controller.door_count}, got {number}")
        return dict(doors[number])

    async def button(self, door: Any, serial: Any = None) -> dict[str, bool]:
        return {"unlocked": self.controller(serial).press_button(int_arg("door", door))}

    async def held_open(self, door: Any, serial: Any = None) -> dict[str, int]:
        return {"index": self.controller(serial).held_open(int_arg("door", door))}

    async def status(self, serial: Any = None) -> dict[str, object]:
        if serial is None and len(self.server.controllers) > 1:
            return {
                "listening": self.server.describe(),
                "controllers": {s: c.report() for s, c in self.server.controllers.items()},
            }
        report = self.controller(serial).report()
        report["listening"] = self.server.describe()
        return report

    async def power_loss(self, serial: Any = None) -> dict[str, int]:
        controller = self.controller(serial)
        controller.power_loss()
        return {"power_losses": controller.power_losses}

    async def set_time(self, at: Any, serial: Any = None, frozen: Any = False) -> dict[str, str]:
        controller = self.controller(serial)
        if not isinstance(at, str):
            raise ValueError(f"at: must be an ISO-8601 string, got {at!r}")
        try:
            instant = datetime.fromisoformat(at)
        except ValueError:
            raise ValueError(f"at: {at!r} is not an ISO-8601 date and time") from None
        if instant.tzinfo is None:
            raise ValueError("at: must carry a time zone (for example ...Z or +01:00)")
        if bool_arg("frozen", frozen):
            controller.clock.frozen_at = instant.timestamp()
            controller.clock.offset_s = 0.0
        else:
            controller.clock.frozen_at = None
            controller.set_now(instant.astimezone(controller.tz).replace(tzinfo=None))
        return {"clock": controller.now().isoformat()}

    async def drift(self, seconds: Any, serial: Any = None) -> dict[str, str]:
        controller = self.controller(serial)
        controller.drift(number_arg("seconds", seconds, -10 * 365 * 86400, 10 * 365 * 86400))
        return {"clock": controller.now().isoformat()}

    async def fault(self, kind: Any, **params: Any) -> dict[str, object]:
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind: must be one of {', '.join(FAULT_KINDS)}, got {kind!r}")
        allowed = {
            "drop": {"count"},
            "delay": {"seconds"},
            "malformed": {"how", "count"},
            "replay_event": {"serial"},
            "raw_event": {"serial", "hex"},
        }.get(kind, set())
        extra = sorted(set(params) - allowed)
        if extra:
            raise ValueError(f"{extra[0]}: not an argument of fault {kind!r}")
        faults = self.server.faults
        if kind == "drop":
            count = int_arg("count", params.get("count", 1))
            if count < -1:
                raise ValueError(f"count: -1 (every reply) or a number of replies, got {count}")
            faults.drop = count
        elif kind == "delay":
            faults.delay_s = number_arg("seconds", params.get("seconds", 0.0), 0.0, 60.0)
        elif kind == "malformed":
            how = params.get("how")
            if how not in MALFORMED_KINDS:
                raise ValueError(f"how: must be one of {', '.join(MALFORMED_KINDS)}, got {how!r}")
            count = int_arg("count", params.get("count", 1))
            if count < -1 or count == 0:
                raise ValueError(f"count: -1 (every reply) or a number of replies, got {count}")
            faults.malformed = how
            faults.malformed_count = count
        elif kind in ("replay_event", "raw_event"):
            controller = self.controller(params.get("serial"))
            if controller.listener is None:
                raise ValueError("serial: that controller has no listener set")
            if kind == "replay_event":
                packet = controller.stale_event_packet()
                if packet is None:
                    raise ValueError("serial: that controller has no event to replay")
            else:
                raw = params.get("hex")
                if not isinstance(raw, str):
                    raise ValueError(f"hex: must be a string of hex digits, got {raw!r}")
                try:
                    packet = bytes.fromhex(raw)
                except ValueError:
                    raise ValueError("hex: not hex digits") from None
            self.server.send_raw(packet, controller.listener)
        elif kind == "clear":
            faults.clear()
        return self.faults()

    def faults(self) -> dict[str, object]:
        f = self.server.faults
        return {
            "drop": f.drop,
            "delay_s": f.delay_s,
            "malformed": f.malformed,
            "malformed_count": f.malformed_count,
        }

    async def requests(self, limit: Any = 100) -> list[dict[str, object]]:
        count = int_arg("limit", limit)
        if count < 1:
            raise ValueError(f"limit: must be at least 1, got {count}")
        logged = list(self.server.requests)[-count:]
        return [
            {"serial": r.serial, "function": r.function, "argument": r.argument, "via": r.transport}
            for r in logged
        ]


__all__ = ["FAULT_KINDS", "UhppoteSimulator"]

"""A simulated Modbus door controller speaking the lockgate register map.

:class:`ControllerMemory` is the controller's state, :class:`ControllerServer` serves it over
Modbus TCP or RTU, :class:`ControllerSimulator` adds the control interface; ``python -m
simulators.controller`` (``lockgate sim controller``) runs one as a process.
"""

from __future__ import annotations

from simulators.controller.controls import FAULT_KINDS, ControllerSimulator
from simulators.controller.memory import ControllerMemory, Decision, DeviceBusy, WriteRefused
from simulators.controller.ptylink import PtyLink
from simulators.controller.server import ControllerServer, RegisterMap

__all__ = [
    "FAULT_KINDS",
    "ControllerMemory",
    "ControllerServer",
    "ControllerSimulator",
    "Decision",
    "DeviceBusy",
    "PtyLink",
    "RegisterMap",
    "WriteRefused",
]

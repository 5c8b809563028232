"""Simulated UHPPOTE access controllers (UT0311-L01/L02/L04) speaking their real UDP and TCP
protocol (64-byte packets, port 60000 on the devices), several per process by serial number,
with a fault-injection control interface.

:mod:`simulators.uhppote.packets` is the wire format, :mod:`simulators.uhppote.controller` one
controller's memory and decisions, :mod:`simulators.uhppote.server` the UDP/TCP server and
:mod:`simulators.uhppote.controls` the control commands.
"""

from __future__ import annotations

from simulators.uhppote.controller import UhppoteController
from simulators.uhppote.controls import UhppoteSimulator
from simulators.uhppote.server import UhppoteServer

__all__ = ["UhppoteController", "UhppoteServer", "UhppoteSimulator"]

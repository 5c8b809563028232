"""Simulated key programming stations with virtual keys and offline cylinders, speaking
the serial key-station protocol (``docs/protocols/key-station.md``) from the device side.

Composable parts for a site runner: :class:`KeyRegistry` / :class:`VirtualKey` (keys),
:class:`Cylinder` (offline cylinder decisions and event ring), :class:`SimClock`,
:class:`SimWorld` (all of them plus the time zone), :class:`StationDevice` (the protocol
engine, attachable to a :class:`PtyPort` or :class:`StreamPort`), :class:`FaultPlan`, and
:class:`StationSimulator` (one station on a pty with its control server).
"""

from __future__ import annotations

from simulators.station.clock import SimClock
from simulators.station.cylinder import Cylinder, Decision, DenyReason, schedule_allows
from simulators.station.device import StationConfig, StationDevice
from simulators.station.faults import FaultKind, FaultPlan
from simulators.station.keys import KeyRegistry, VirtualKey, blank_image
from simulators.station.ports import Port, PtyPort, StreamPort
from simulators.station.simulator import SimWorld, StationSimulator

__all__ = [
    "Cylinder",
    "Decision",
    "DenyReason",
    "FaultKind",
    "FaultPlan",
    "KeyRegistry",
    "Port",
    "PtyPort",
    "SimClock",
    "SimWorld",
    "StationConfig",
    "StationDevice",
    "StationSimulator",
    "StreamPort",
    "VirtualKey",
    "blank_image",
    "schedule_allows",
]

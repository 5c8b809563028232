"""Simulated OSDP readers built on libosdp's ``PeripheralDevice``.

:class:`PtyBus` is the RS-485 line (a pseudo-terminal), :class:`SimulatedReader` one reader
on it, :class:`OsdpSimulator` a bus of readers with the control interface; ``python -m
simulators.osdp`` (``lockgate sim osdp``) runs one as a process.
"""

from __future__ import annotations

from simulators.osdp.bus import PtyBus
from simulators.osdp.controls import OsdpSimulator
from simulators.osdp.reader import ReaderSpec, SimulatedReader

__all__ = ["OsdpSimulator", "PtyBus", "ReaderSpec", "SimulatedReader"]

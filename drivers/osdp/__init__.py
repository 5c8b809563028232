"""OSDP readers with lockgate as their control panel (entry point ``osdp-reader``).

:class:`OsdpReaderDriver` drives the readers on one RS-485 bus through the OSDP library
(libosdp's ``ControlPanel``), decides card reads locally against the allow-list it keeps in
its state directory, and reports reads, tamper, power and link changes as events. The wire
protocol and the frames checked against the specification are in ``docs/protocols/osdp.md``.
"""

from __future__ import annotations

from drivers.osdp.allowlist import AllowList
from drivers.osdp.driver import Decision, InstallResult, OsdpReaderDriver
from drivers.osdp.keys import KeyFile, KeyFileError, Scbk
from drivers.osdp.options import OsdpOptions, ReaderConfig, parse_options

__all__ = [
    "AllowList",
    "Decision",
    "InstallResult",
    "KeyFile",
    "KeyFileError",
    "OsdpOptions",
    "OsdpReaderDriver",
    "ReaderConfig",
    "Scbk",
    "parse_options",
]

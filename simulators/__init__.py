"""Simulated devices that speak the real wire protocols from the device side, for test
benches and the demo: key programming stations with virtual keys, offline cylinders and
Modbus door controllers."""

from __future__ import annotations

"""Hardware adapters: one contract per device role (:mod:`drivers.base`), one package per
wire protocol, found by name through the ``lockgate.drivers`` entry-point group."""

from __future__ import annotations

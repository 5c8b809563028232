"""Door controllers speaking the lockgate register map over Modbus TCP or Modbus RTU.

The register map is specified in ``docs/protocols/door-controller.md`` and implemented by
:mod:`drivers.modbusdoor.registers`; :class:`ModbusDoorController` is the driver, registered
as ``modbus-door`` in the ``lockgate.drivers`` entry-point group.
"""

from __future__ import annotations

from drivers.modbusdoor.driver import CommitRefused, ModbusDoorController
from drivers.modbusdoor.link import LinkSettings, ModbusLink

__all__ = ["CommitRefused", "LinkSettings", "ModbusDoorController", "ModbusLink"]

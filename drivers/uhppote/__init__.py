"""UHPPOTE UT0311-L0x access controllers (1, 2 or 4 doors) over their UDP/TCP protocol.

:class:`UhppoteDoorController` is the driver, registered as ``uhppote-door`` in the
``lockgate.drivers`` entry-point group; requests go through the ``uhppoted`` async API
(:mod:`drivers.uhppote.link`). The protocol and this driver's use of it are described in
``docs/protocols/uhppote.md``.
"""

from __future__ import annotations

from drivers.uhppote.driver import UhppoteDoorController
from drivers.uhppote.link import LinkSettings, UhppoteLink
from drivers.uhppote.records import Card, Profile, Table

__all__ = ["Card", "LinkSettings", "Profile", "Table", "UhppoteDoorController", "UhppoteLink"]

"""Commands: every accepted change of a fact, validated (``model``, ``review``,
``retention``), checked against the current facts (``handlers``) and dispatched by one table
(``table``)."""

from __future__ import annotations

from gateway.commands.context import CommandContext
from gateway.commands.model import COMMANDS, COMMANDS_BY_NAME, Command
from gateway.commands.table import HANDLERS, handle

__all__ = ["COMMANDS", "COMMANDS_BY_NAME", "HANDLERS", "Command", "CommandContext", "handle"]

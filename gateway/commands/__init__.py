"""Commands: every accepted change of a fact, validated (``model``) and checked against the
current facts (``handlers``)."""

from __future__ import annotations

from gateway.commands.handlers import CommandContext, handle
from gateway.commands.model import COMMANDS, COMMANDS_BY_NAME, Command

__all__ = ["COMMANDS", "COMMANDS_BY_NAME", "Command", "CommandContext", "handle"]

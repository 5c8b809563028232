"""What a command handler sees and asks for: :class:`CommandContext`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.commands.model import Command
from gateway.domain.facts import Fact
from gateway.rules.factset import FactSet
from gateway.rules.parameters import RulesConfig


@dataclass
class CommandContext:
    """What a handler sees: the current facts, the time, the operator, and the writes it asks
    for. ``result`` is returned to the caller (and in the MQTT response's ``data``).

    Listeners of the core see the same context after the handler ran: ``command``,
    ``request_id`` and ``source`` say what was asked and by whom; ``refusal`` is set
    (``{code, message, field}``) when the command was refused and nothing was written."""

    facts: FactSet
    now: datetime
    operator: str
    cfg: RulesConfig
    command: Command | None = None
    request_id: str | None = None
    source: str = "cli"
    refusal: dict[str, Any] | None = None
    puts: list[Fact] = field(default_factory=list)
    deletes: list[tuple[type[Fact], tuple[str, ...]]] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    subjects: list[str] = field(default_factory=list)
    dumped: dict[str, Any] | None = field(default=None, repr=False)

    def command_json(self) -> dict[str, Any]:
        """The command's fields as JSON values (``model_dump(mode="json")``), dumped once per
        command and shared by the core and its listeners: read it, never change it."""
        if self.dumped is None:
            assert self.command is not None
            self.dumped = self.command.model_dump(mode="json")
        return self.dumped

    def put(self, fact: Fact) -> None:
        self.puts.append(fact)

    def delete(self, kind: type[Fact], key: tuple[str, ...]) -> None:
        self.deletes.append((kind, key))


__all__ = ["CommandContext"]

"""How the demo speaks: step headings, narration, checks, and the summary at the end."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table


class StepFailed(AssertionError):
    """A step did not behave as the story says it must."""


@dataclass
class StepResult:
    name: str
    title: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class Narrator:
    """Prints the story as it happens and keeps each step's result."""

    console: Console
    results: list[StepResult] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def step(self, index: int, total: int, title: str) -> None:
        self.console.rule(f"[bold]{index}/{total}  {title}")

    def say(self, text: str) -> None:
        self.console.print(f"  {text}", highlight=False)

    def check(self, condition: bool, what: str) -> None:
        """Assert a fact of the story; print it ticked, or fail the step."""
        if not condition:
            self.console.print(f"  [red]✘ {what}[/]", highlight=False)
            raise StepFailed(what)
        self.console.print(f"  [green]✔[/] {what}", highlight=False)

    def record(self, result: StepResult) -> None:
        self.results.append(result)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def summary(self) -> dict[str, Any]:
        table = Table(title="the story, step by step")
        for col in ("#", "step", "result", "seconds"):
            table.add_column(col)
        for i, r in enumerate(self.results, 1):
            table.add_row(
                str(i),
                r.title,
                "[green]ok[/]" if r.ok else f"[red]FAILED[/] {r.detail}",
                f"{r.seconds:.2f}",
            )
        self.console.print(table)
        return {
            "ok": self.ok,
            "steps": len(self.results),
            "failed": [r.name for r in self.results if not r.ok],
            "seconds": round(time.perf_counter() - self.started, 2),
        }

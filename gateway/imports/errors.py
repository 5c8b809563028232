"""The errors of a manifest import: one :class:`RowError` per problem, collected into one
:class:`ImportRejected`; :class:`UnreadableFile` for a file that is not a table at all."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gateway.domain import DomainError


@dataclass(frozen=True)
class RowError:
    """One problem in an imported file.

    ``row`` is the row number as a person sees it in a spreadsheet program (the header is
    row 1 when the file starts with it, the first data row is 2); ``column`` the column name
    (``key_number``, ``first_name``, ``last_name``, ``id06``) or ``header``.
    """

    row: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.message}"


class ImportRejected(DomainError):
    """The whole file was rejected; ``errors`` lists every problem found, by row."""

    code = "IMPORT_REJECTED"

    def __init__(self, errors: Iterable[RowError]) -> None:
        self.errors: list[RowError] = sorted(errors, key=lambda e: e.row)
        if not self.errors:
            raise ValueError("ImportRejected needs at least one RowError")
        count = len(self.errors)
        lines = "\n".join(str(e) for e in self.errors)
        super().__init__(
            f"the file was rejected, nothing was imported ({count} "
            f"{'error' if count == 1 else 'errors'}):\n{lines}"
        )


class UnreadableFile(DomainError):
    """The file cannot be read as a table at all: unsupported type, missing, damaged."""

    code = "UNREADABLE_FILE"

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path.name}: {reason}", field="file")
        self.path = path


__all__ = ["ImportRejected", "RowError", "UnreadableFile"]

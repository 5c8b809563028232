"""Errors raised by the domain layer.

Every error names the field it is about and the reason, so that an operator, a CLI user
or a central system reading an MQTT error response knows exactly what to correct.
"""

from __future__ import annotations


class DomainError(Exception):
    """A fact or an operation violates a rule of the domain.

    ``code`` is a stable machine-readable code (``INVALID``, ``NOT_FOUND``, ``CONFLICT``,
    ``ILLEGAL_TRANSITION``, ``STALE``, ...), ``field`` the dotted path of the offending field
    when there is one, ``message`` a sentence for a person.
    """

    code = "INVALID"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        if self.field:
            return f"{self.field}: {self.message}"
        return self.message


class NotFound(DomainError):
    """A referenced fact does not exist."""

    code = "NOT_FOUND"


class Conflict(DomainError):
    """The operation contradicts a stored fact (duplicate, one-key-per-employment, ...)."""

    code = "CONFLICT"


class IllegalTransition(DomainError):
    """A credential lifecycle transition that the state machine does not allow."""

    code = "ILLEGAL_TRANSITION"


class Stale(DomainError):
    """A revision older than (or equal to) the stored one."""

    code = "STALE"

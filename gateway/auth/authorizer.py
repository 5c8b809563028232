"""Who may do what: the role check, as a pure function and as the core's authorizer hook.

:func:`check_action` and :func:`check_command` decide from an :class:`Operator` alone (plus,
for a project manager, who manages the assignment). :class:`Authorizer` is the
:class:`gateway.core.AuthorizationHook` the core calls inside every command's transaction: it looks
the operator up in the store and raises :class:`Forbidden` (code ``FORBIDDEN``, naming the
operator, the role and the action) when the role does not allow the command. Error messages
name operators, roles, actions and ids, never a person's name, because refusals are logged.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Final

from sqlalchemy.orm import Session

from gateway.auth import operators as operator_store
from gateway.auth.operators import Operator
from gateway.auth.roles import (
    PROJECT_MANAGER,
    ROLES,
    RUN_RETENTION,
    SCOPED_ACTIONS,
    TITLE_ACTIONS,
    allowed_actions,
    normalize_title,
)
from gateway.commands import model as m
from gateway.domain.errors import DomainError
from gateway.domain.facts import Assignment
from gateway.store import fact_repository as fact_store
from gateway.store.remembered import remembered

RETENTION_OPERATOR: Final = "lockgate-retention"
"""The built-in operator the gateway's retention service acts as (role ``maintenance``)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

BUILTIN_OPERATORS: Final[dict[str, Operator]] = {
    RETENTION_OPERATOR: Operator(
        name=RETENTION_OPERATOR,
        display_name="retention service",
        role="maintenance",
        title=None,
        active=True,
        password_hash=None,
        token_hash=None,
        created_at=_EPOCH,
        created_by="gateway",
        changed_at=_EPOCH,
    ),
}
"""Actors of the gateway itself. They cannot log in (no secret) and their names are reserved;
only the code that runs in the gateway process submits as them."""

assert ROLES[BUILTIN_OPERATORS[RETENTION_OPERATOR].role].allows(RUN_RETENTION)


class Forbidden(DomainError):
    """The operator may not do this (unknown, disabled, not authenticated, or the role does
    not allow the action)."""

    code = "FORBIDDEN"


def _same_person(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def check_action(op: Operator, action: str) -> None:
    """Raise :class:`Forbidden` unless ``op`` may perform ``action`` (its role, or its
    title, allows it). Scoped actions (a project manager's decisions) are only checked for
    the role here; :func:`check_command` checks the scope."""
    if not op.active:
        raise Forbidden(f"operator {op.name} is disabled", field="operator")
    if action not in allowed_actions(op.role, op.title):
        raise Forbidden(
            f"operator {op.name} (role {op.role}) may not {action}",
            field="operator",
        )


def _scope_applies(op: Operator, action: str) -> bool:
    """True when ``op`` holds ``action`` only through a scoped role (not by its title)."""
    return SCOPED_ACTIONS.get(op.role) == action and action not in TITLE_ACTIONS.get(
        normalize_title(op.title), frozenset()
    )


def check_command(
    op: Operator,
    command: m.Command,
    manager_of: Callable[[str], str | None] = lambda _: None,
) -> None:
    """Raise :class:`Forbidden` unless ``op`` may run ``command``.

    ``manager_of(assignment_id)`` returns the assignment's ``project_manager`` (``None``
    when the assignment is unknown): a project manager decides only the applications of the
    assignments whose project manager is their display name."""
    action = command.action
    check_action(op, action)
    if op.role == PROJECT_MANAGER and _scope_applies(op, action):
        if not isinstance(command, m.PutApplication):
            raise Forbidden(
                f"operator {op.name} (role {op.role}) may {action} only through access "
                f"applications, not {command.name}",
                field="operator",
            )
        assignment_id = command.application.assignment_id
        manager = manager_of(assignment_id)
        if manager is None:
            raise Forbidden(
                f"assignment {assignment_id} is not registered; a project manager decides "
                "only applications of assignments they manage",
                field="application.assignment_id",
            )
        if not _same_person(manager, op.display_name):
            raise Forbidden(
                f"operator {op.name} does not manage assignment {assignment_id}; a project "
                "manager decides only applications of assignments they manage",
                field="application.assignment_id",
            )


class Authorizer:
    """The core's authorizer: operators from the store, checked against their roles.

    ``authenticated``: when given (the CLI), only these operator names may act at all; every
    other name is refused, so a change can never be made under a name that did not prove its
    identity in this process. ``None`` (the service) trusts the operator names the gateway
    itself supplies (the MQTT bridge's configured system operators, the retention service).
    ``hints`` adds a sentence to the refusal of an unregistered operator (e.g. how to create
    the MQTT system operator).
    """

    def __init__(
        self,
        *,
        authenticated: Collection[str] | None = None,
        builtin: Mapping[str, Operator] | None = None,
        hints: Mapping[str, str] | None = None,
    ) -> None:
        self.authenticated = None if authenticated is None else frozenset(authenticated)
        self.builtin = dict(BUILTIN_OPERATORS if builtin is None else builtin)
        self.hints = dict(hints or {})

    def operator(self, session: Session, name: str) -> Operator:
        """The operator ``name`` if it may act at all; :class:`Forbidden` otherwise."""
        if self.authenticated is not None and name not in self.authenticated:
            raise Forbidden(
                f"operator {name} has not authenticated in this process", field="operator"
            )
        builtin = self.builtin.get(name)
        if builtin is not None:
            return builtin
        # A batch of commands in one transaction usually comes from one operator, and so do
        # the transactions one after the other: the stored operator is remembered between
        # them until anyone changes an operator (gateway.store.remembered; operators.add and
        # change forget).
        cache = remembered(session)
        key = ("operator", name)
        kept: Operator | None = cache.get(key)
        if kept is not None:
            return kept
        op = operator_store.get(session, name)
        if op is None:
            hint = self.hints.get(name)
            raise Forbidden(
                f"operator {name} is not registered" + (f"; {hint}" if hint else ""),
                field="operator",
            )
        if not op.active:
            raise Forbidden(f"operator {name} is disabled", field="operator")
        cache[key] = op
        return op

    def require(self, session: Session, name: str, action: str) -> Operator:
        """The operator ``name`` if its role allows ``action`` (operator actions that are
        not commands: managing operators, reading the log, ...)."""
        op = self.operator(session, name)
        check_action(op, action)
        return op

    def __call__(self, session: Session, operator: str, command: m.Command) -> None:
        op = self.operator(session, operator)

        def manager_of(assignment_id: str) -> str | None:
            a = fact_store.get(session, Assignment, assignment_id)
            return None if a is None else a.project_manager

        check_command(op, command, manager_of)


__all__ = [
    "BUILTIN_OPERATORS",
    "RETENTION_OPERATOR",
    "Authorizer",
    "Forbidden",
    "check_action",
    "check_command",
]

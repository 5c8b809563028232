"""Managing operators, each change logged in the audit chain in the same transaction.

Only an administrator (action ``manage_operators``) adds and changes operators; any operator
may change their *own* password or token. The first administrator is created by
:func:`bootstrap`, which is refused once any operator exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from gateway.audit import log as audit_log
from gateway.auth import operators as operator_store
from gateway.auth.authorizer import Authorizer
from gateway.auth.operators import Operator
from gateway.auth.roles import ADMINISTRATOR, MANAGE_OPERATORS
from gateway.domain.errors import Conflict, DomainError
from gateway.store.database import Database
from gateway.store.tables import console_session


def bootstrap(
    session: Session,
    *,
    name: str,
    at: datetime,
    display_name: str | None = None,
    password_hash: str | None = None,
    token_hash: str | None = None,
) -> Operator:
    """Create the first operator, an administrator; refused once any operator exists."""
    if operator_store.count(session) > 0:
        raise Conflict(
            "operators exist already: an administrator adds new ones (lockgate operator add)",
            field="name",
        )
    op = operator_store.add(
        session,
        name=name,
        role=ADMINISTRATOR,
        display_name=display_name,
        password_hash=password_hash,
        token_hash=token_hash,
        created_by=name,
        at=at,
    )
    audit_log.append(
        session,
        at=at,
        actor=op.name,
        action="operator.bootstrap",
        subjects=[f"operator {op.name}"],
        data={"role": op.role, "authenticates_with": op.secrets},
        personal={"display_name": op.display_name},
    )
    return op


def add_operator(
    session: Session,
    authorizer: Authorizer,
    actor: str,
    *,
    name: str,
    role: str,
    at: datetime,
    display_name: str | None = None,
    title: str | None = None,
    password_hash: str | None = None,
    token_hash: str | None = None,
) -> Operator:
    """An administrator (``actor``) adds an operator."""
    authorizer.require(session, actor, MANAGE_OPERATORS)
    op = operator_store.add(
        session,
        name=name,
        role=role,
        display_name=display_name,
        title=title,
        password_hash=password_hash,
        token_hash=token_hash,
        created_by=actor,
        at=at,
    )
    audit_log.append(
        session,
        at=at,
        actor=actor,
        action="operator.add",
        subjects=[f"operator {op.name}"],
        data={"role": op.role, "title": op.title, "authenticates_with": op.secrets},
        personal={"display_name": op.display_name},
    )
    return op


_OWN_SECRETS = frozenset({"password_hash", "token_hash"})


def change_operator(
    session: Session,
    authorizer: Authorizer,
    actor: str,
    name: str,
    *,
    at: datetime,
    **changes: Any,
) -> Operator:
    """Change operator ``name``: an administrator may change anything; an operator may
    change their own password or token."""
    if actor == name and set(changes) <= _OWN_SECRETS:
        authorizer.operator(session, actor)
    else:
        authorizer.require(session, actor, MANAGE_OPERATORS)
    old = operator_store.get(session, name)
    new = operator_store.change(session, name, at=at, **changes)
    assert old is not None
    data: dict[str, Any] = dict(operator_store.describe_changes(old, new))
    if "password_hash" in changes:
        # A new password signs the operator out of every console (whoever knew the old one).
        result = session.execute(delete(console_session).where(console_session.c.operator == name))
        ended = int(getattr(result, "rowcount", 0) or 0)
        if ended:
            data["console_sessions_ended"] = ended
    personal = None
    if old.display_name != new.display_name:
        data["display_name"] = "changed"
        personal = {"display_name": new.display_name}
    audit_log.append(
        session,
        at=at,
        actor=actor,
        action="operator.change",
        subjects=[f"operator {name}"],
        data=data,
        personal=personal,
    )
    return new


def record_refusal(
    db: Database,
    *,
    at: datetime,
    actor: str,
    action: str,
    subjects: Sequence[str],
    error: DomainError,
) -> None:
    """Log a refused operator action in its own transaction (the refused one rolled back)."""
    with db.session() as s:
        audit_log.append(
            s,
            at=at,
            actor=actor[:64] or "-",
            action=action,
            subjects=subjects,
            data={
                "status": "refused",
                "error": {"code": error.code, "message": error.message, "field": error.field},
            },
        )


__all__ = ["add_operator", "bootstrap", "change_operator", "record_refusal"]

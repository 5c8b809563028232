"""Operator accounts in the store: who may act, with which role, title and secret.

An operator has a ``name`` (the login, an identifier), a ``display_name`` (the person's name
as other facts spell it: an assignment's ``project_manager`` is compared with it), a ``role``
(:data:`gateway.auth.roles.ROLES`), an optional ``title`` ("operations manager"), and a
password hash, an API token hash, or both. Operators are never deleted, only disabled, so the
audit log's actors stay resolvable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.orm import Session

from gateway.auth.roles import ADMINISTRATOR, ROLES
from gateway.domain.errors import Conflict, DomainError, NotFound
from gateway.domain.identifiers import Ident
from gateway.store.remembered import forget
from gateway.store.tables import operator_account

RESERVED_NAMES: Final[frozenset[str]] = frozenset({"lockgate-retention", "gateway"})
"""Names of built-in actors; no operator may take them."""

_IDENT: TypeAdapter[str] = TypeAdapter(Ident)


@dataclass(frozen=True, slots=True)
class Operator:
    """One operator account. The secret hashes are kept for authentication only: never
    print or log them."""

    name: str
    display_name: str
    role: str
    title: str | None
    active: bool
    password_hash: str | None
    token_hash: str | None
    created_at: datetime
    created_by: str
    changed_at: datetime

    @property
    def secrets(self) -> str:
        """What the operator authenticates with: ``password``, ``token`` or both."""
        kinds = [k for k, h in (("password", self.password_hash), ("token", self.token_hash)) if h]
        return "+".join(kinds)

    def public(self) -> dict[str, Any]:
        """Everything but the secret hashes."""
        return {
            "name": self.name,
            "display_name": self.display_name,
            "role": self.role,
            "title": self.title,
            "active": self.active,
            "authenticates_with": self.secrets,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "changed_at": self.changed_at.isoformat(),
        }


def _operator(row: Row[Any]) -> Operator:
    return Operator(
        name=row.name,
        display_name=row.display_name,
        role=row.role,
        title=row.title,
        active=row.active,
        password_hash=row.password_hash,
        token_hash=row.token_hash,
        created_at=row.created_at,
        created_by=row.created_by,
        changed_at=row.changed_at,
    )


def check_name(name: str) -> str:
    """An operator name: an identifier (letters, digits, ``. _ : -``), not a reserved one."""
    try:
        value = _IDENT.validate_python(name)
    except ValidationError as exc:
        raise DomainError(exc.errors()[0]["msg"], field="name") from None
    if value in RESERVED_NAMES:
        raise DomainError(f"{value!r} is reserved for the gateway itself", field="name")
    return value


def check_role(role: str) -> str:
    if role not in ROLES:
        raise DomainError(
            f"unknown role {role!r} (roles: {', '.join(ROLES)})",
            field="role",
        )
    return role


def _check_text(field: str, value: str | None, limit: int, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise DomainError("is required", field=field)
        return None
    text = " ".join(value.split())
    if not text:
        if required:
            raise DomainError("must not be empty", field=field)
        return None
    if len(text) > limit:
        raise DomainError(f"must be at most {limit} characters", field=field)
    return text


def get(session: Session, name: str) -> Operator | None:
    row = (
        session.connection()
        .execute(select(operator_account).where(operator_account.c.name == name))
        .first()
    )
    return None if row is None else _operator(row)


def all_operators(session: Session) -> list[Operator]:
    rows = session.connection().execute(select(operator_account).order_by(operator_account.c.name))
    return [_operator(r) for r in rows]


def count(session: Session) -> int:
    return int(
        session.connection()
        .execute(select(func.count()).select_from(operator_account))
        .scalar_one()
    )


def active_administrators(session: Session) -> list[str]:
    rows = session.connection().execute(
        select(operator_account.c.name).where(
            operator_account.c.role == ADMINISTRATOR, operator_account.c.active.is_(True)
        )
    )
    return sorted(r.name for r in rows)


def add(
    session: Session,
    *,
    name: str,
    role: str,
    display_name: str | None = None,
    title: str | None = None,
    password_hash: str | None = None,
    token_hash: str | None = None,
    created_by: str,
    at: datetime,
) -> Operator:
    """Create an operator; the name must be new. ``display_name`` defaults to the name."""
    name = check_name(name)
    check_role(role)
    shown = _check_text("display_name", display_name or name, 100, required=True)
    clean_title = _check_text("title", title, 100, required=False)
    if password_hash is None and token_hash is None:
        raise DomainError("an operator needs a password or an API token", field="secret")
    if get(session, name) is not None:
        raise Conflict(f"operator {name} already exists", field="name")
    forget(session)  # operators are remembered between transactions (the authorizer)
    session.connection().execute(
        insert(operator_account).values(
            name=name,
            display_name=shown,
            role=role,
            title=clean_title,
            password_hash=password_hash,
            token_hash=token_hash,
            active=True,
            created_at=at,
            created_by=created_by,
            changed_at=at,
        )
    )
    added = get(session, name)
    assert added is not None
    return added


_CHANGEABLE: Final = frozenset(
    {"display_name", "role", "title", "password_hash", "token_hash", "active"}
)


def change(session: Session, name: str, *, at: datetime, **changes: Any) -> Operator:
    """Change an operator's fields (``display_name``, ``role``, ``title``,
    ``password_hash``, ``token_hash``, ``active``). Refuses to leave the system without an
    active administrator."""
    unknown = set(changes) - _CHANGEABLE
    if unknown:
        raise TypeError(f"cannot change {sorted(unknown)}")
    old = get(session, name)
    if old is None:
        raise NotFound(f"operator {name} does not exist", field="name")
    values: dict[str, Any] = dict(changes)
    if "role" in values:
        check_role(values["role"])
    if "display_name" in values:
        values["display_name"] = _check_text(
            "display_name", values["display_name"], 100, required=True
        )
    if "title" in values:
        values["title"] = _check_text("title", values["title"], 100, required=False)
    password = values.get("password_hash", old.password_hash)
    token = values.get("token_hash", old.token_hash)
    if password is None and token is None:
        raise DomainError("an operator needs a password or an API token", field="secret")
    stays_admin = values.get("role", old.role) == ADMINISTRATOR and values.get("active", old.active)
    if (
        old.role == ADMINISTRATOR
        and old.active
        and not stays_admin
        and active_administrators(session) == [old.name]
    ):
        raise Conflict(
            f"operator {name} is the last active administrator; make another operator "
            "administrator first",
            field="name",
        )
    forget(session)  # operators are remembered between transactions (the authorizer)
    session.connection().execute(
        update(operator_account)
        .where(operator_account.c.name == name)
        .values(**values, changed_at=at)
    )
    changed = get(session, name)
    assert changed is not None
    return changed


def describe_changes(old: Operator, new: Operator) -> Mapping[str, Any]:
    """The non-secret fields that differ, as ``{field: [old, new]}``; secrets as
    ``{"password": "changed"}``."""
    out: dict[str, Any] = {}
    for f in ("role", "title", "active"):
        if getattr(old, f) != getattr(new, f):
            out[f] = [getattr(old, f), getattr(new, f)]
    if old.password_hash != new.password_hash:
        out["password"] = "changed" if new.password_hash else "removed"
    if old.token_hash != new.token_hash:
        out["token"] = "changed" if new.token_hash else "removed"
    return out


__all__ = [
    "RESERVED_NAMES",
    "Operator",
    "active_administrators",
    "add",
    "all_operators",
    "change",
    "check_name",
    "check_role",
    "count",
    "describe_changes",
    "get",
]

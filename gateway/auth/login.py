"""Authenticating an operator: a password (Argon2id) or an API token.

:func:`login` checks the secret in its own short write transaction. A failure is appended to
the audit log (``auth.failed``: the name given and the method, never the secret) and raised as
:class:`AuthenticationFailed` with the same message whether the name is unknown, disabled or
the secret wrong, so the answer does not tell which names exist. A password hash made with
older Argon2 parameters is replaced on a successful login.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from gateway.audit import log as audit_log
from gateway.auth import operators as operator_store
from gateway.auth.operators import Operator
from gateway.auth.passwords import (
    hash_password,
    needs_rehash,
    verify_password,
    verify_token,
)
from gateway.store.database import Database

PASSWORD_ENV: Final = "LOCKGATE_PASSWORD"
_PLAIN_NAME: Final = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
TOKEN_ENV: Final = "LOCKGATE_TOKEN"

# Verified when the operator does not exist, so that an unknown name costs as long as a
# wrong password.
_DUMMY_HASH: Final = (
    "$argon2id$v=19$m=65536,t=3,p=4$d0W/EeI/2hkY7fE0BqV4+g$"
    "D4otpS3tOXxsk+F+3tC7e4OMzK1Jb5A0wMR+OzPJpJg"
)


class AuthenticationFailed(Exception):
    """The operator could not be authenticated; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class Secret:
    """What an operator proves their identity with."""

    kind: Literal["password", "token"]
    value: str = ""

    def __repr__(self) -> str:
        return f"Secret({self.kind}, ***)"


def secret_from(
    environ: Mapping[str, str],
    operator: str,
    prompt: Callable[[str], str] | None,
) -> Secret:
    """The secret from ``$LOCKGATE_TOKEN``, else ``$LOCKGATE_PASSWORD``, else ``prompt``
    (``getpass.getpass`` at a terminal). Raises :class:`AuthenticationFailed` when none is
    available."""
    token = environ.get(TOKEN_ENV)
    if token:
        return Secret("token", token)
    password = environ.get(PASSWORD_ENV)
    if password:
        return Secret("password", password)
    if prompt is None:
        raise AuthenticationFailed(
            f"operator {operator}: a password is needed: run at a terminal, or set "
            f"{PASSWORD_ENV} (or {TOKEN_ENV} for an API token)"
        )
    try:
        typed = prompt(f"password of operator {operator}: ")
    except (EOFError, KeyboardInterrupt):
        typed = ""
    if not typed:
        raise AuthenticationFailed(f"operator {operator}: no password given")
    return Secret("password", typed)


def _matches(op: Operator | None, secret: Secret) -> bool:
    if secret.kind == "token":
        return (
            op is not None
            and op.active
            and op.token_hash is not None
            and verify_token(op.token_hash, secret.value)
        )
    stored = op.password_hash if op is not None and op.password_hash else _DUMMY_HASH
    ok = verify_password(stored, secret.value)
    return ok and op is not None and op.active and op.password_hash is not None


def login(db: Database, name: str, secret: Secret, *, at: datetime) -> Operator:
    """The operator ``name`` if ``secret`` proves it; :class:`AuthenticationFailed` if not
    (and the failure is logged)."""
    with db.session() as s:
        op = operator_store.get(s, name)
        ok = _matches(op, secret)
        if ok and op is not None:
            if secret.kind == "password" and op.password_hash and needs_rehash(op.password_hash):
                op = operator_store.change(
                    s, op.name, at=at, password_hash=hash_password(secret.value)
                )
            return op
        shown = name.replace("\x00", "")[:64] or "-"
        audit_log.append(
            s,
            at=at,
            actor=shown,
            action="auth.failed",
            subjects=[f"operator {shown}"] if _PLAIN_NAME.match(shown) else [],
            data={"method": secret.kind},
        )
    raise AuthenticationFailed(f"operator {name}: authentication failed")


__all__ = [
    "PASSWORD_ENV",
    "TOKEN_ENV",
    "AuthenticationFailed",
    "Secret",
    "login",
    "secret_from",
]

"""Operators and roles: who may change what, and how they prove who they are.

- :mod:`~gateway.auth.roles`: the roles as data (role -> actions), titles that add actions;
- :mod:`~gateway.auth.operators`: operator accounts in the store;
- :mod:`~gateway.auth.passwords`: Argon2id password hashes and hashed API tokens;
- :mod:`~gateway.auth.authorizer`: the role check and the core's authorizer hook;
- :mod:`~gateway.auth.login`: authenticating an operator (failures are logged);
- :mod:`~gateway.auth.manage`: bootstrap, add and change operators (logged).
"""

from __future__ import annotations

from gateway.auth.authorizer import (
    BUILTIN_OPERATORS,
    RETENTION_OPERATOR,
    Authorizer,
    Forbidden,
    check_action,
    check_command,
)
from gateway.auth.login import AuthenticationFailed, Secret, login, secret_from
from gateway.auth.operators import Operator
from gateway.auth.roles import ACTIONS, ROLES, Role, allowed_actions, role_table

__all__ = [
    "ACTIONS",
    "BUILTIN_OPERATORS",
    "RETENTION_OPERATOR",
    "ROLES",
    "AuthenticationFailed",
    "Authorizer",
    "Forbidden",
    "Operator",
    "Role",
    "Secret",
    "allowed_actions",
    "check_action",
    "check_command",
    "login",
    "role_table",
    "secret_from",
]

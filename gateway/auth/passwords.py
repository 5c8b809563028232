"""Operator secrets: passwords hashed with Argon2id (argon2-cffi), API tokens stored hashed.

Passwords are hashed with argon2-cffi's :class:`~argon2.PasswordHasher` (Argon2id, the
library's RFC 9106 defaults); a hash made with older parameters is replaced at the next
successful login. API tokens are 256-bit random strings (``lgt_`` + URL-safe base64); only
their SHA-256 is stored, which is enough for a secret with that much entropy, and is compared
in constant time. A token is shown once, when it is made.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 1024
TOKEN_PREFIX: Final = "lgt_"

_hasher = PasswordHasher()


class WeakPassword(ValueError):
    """A new password that the policy refuses; the message says why."""


def check_password_policy(password: str) -> str:
    """Refuse passwords shorter than 12 characters, longer than 1024, or made of one
    repeated character; return the password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"password: must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"password: must be at most {MAX_PASSWORD_LENGTH} characters")
    if len(set(password)) == 1:
        raise WeakPassword("password: must not be one character repeated")
    return password


def hash_password(password: str) -> str:
    """The Argon2id hash of a password that satisfies the policy."""
    return _hasher.hash(check_password_policy(password))


def verify_password(stored_hash: str, password: str) -> bool:
    """True when ``password`` matches ``stored_hash``; never raises for a wrong password or a
    damaged hash."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with other parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def new_token() -> str:
    """A fresh API token (shown once; store only :func:`hash_token` of it)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def verify_token(stored_hash: str, token: str) -> bool:
    """True when ``token`` hashes to ``stored_hash`` (constant-time comparison)."""
    return hmac.compare_digest(stored_hash, hash_token(token))


__all__ = [
    "MIN_PASSWORD_LENGTH",
    "TOKEN_PREFIX",
    "WeakPassword",
    "check_password_policy",
    "hash_password",
    "needs_rehash",
    "new_token",
    "verify_password",
    "verify_token",
]

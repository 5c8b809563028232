"""Console sessions, CSRF tokens, sign-in lock-out, and API bearer tokens.

A console session lives in the process only (a restart signs everyone out). Its cookie is
HttpOnly and SameSite=Strict, Secure when the console serves TLS (or ``web.secure_cookies``);
it ends after ``web.session_idle_s`` unused and ``web.session_max_s`` after sign-in,
whichever comes first. Every state-changing console request carries the session's CSRF token
(a form field ``csrf_token`` or the ``X-CSRF-Token`` header); one without it is refused.

Repeated failed sign-ins of one operator name lock it out: after ``web.lockout_after``
failures each further failure doubles the wait, from 30 seconds up to 15 minutes. A success
clears the count.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy.orm import Session

from gateway.auth import operators as operator_store
from gateway.auth.operators import Operator
from gateway.auth.passwords import TOKEN_PREFIX, verify_token

COOKIE: Final = "lockgate_session"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
LOCKOUT_FIRST_S: Final = 30.0
LOCKOUT_MAX_S: Final = 900.0


@dataclass
class WebSession:
    """One signed-in operator in one browser."""

    sid: str
    operator: str
    created: float
    seen: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    language: str | None = None

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf, token)


class SessionStore:
    """The console's sessions, by id, with idle and absolute expiry on ``clock`` (seconds)."""

    def __init__(self, *, idle_s: float, max_s: float, clock: Callable[[], float]) -> None:
        self.idle_s = idle_s
        self.max_s = max_s
        self.clock = clock
        self._sessions: dict[str, WebSession] = {}

    def create(self, operator: str) -> WebSession:
        now = self.clock()
        session = WebSession(secrets.token_urlsafe(32), operator, now, now)
        self._sessions[session.sid] = session
        self._sweep(now)
        return session

    def get(self, sid: str | None) -> WebSession | None:
        """The live session ``sid`` (touched), or ``None`` when unknown or expired."""
        if not sid:
            return None
        session = self._sessions.get(sid)
        if session is None:
            return None
        now = self.clock()
        if now - session.seen > self.idle_s or now - session.created > self.max_s:
            del self._sessions[sid]
            return None
        session.seen = now
        return session

    def drop(self, sid: str | None) -> WebSession | None:
        return self._sessions.pop(sid, None) if sid else None

    def _sweep(self, now: float) -> None:
        for sid, s in list(self._sessions.items()):
            if now - s.seen > self.idle_s or now - s.created > self.max_s:
                del self._sessions[sid]


@dataclass
class _Failures:
    count: int = 0
    until: float = 0.0


class Lockout:
    """Failed sign-ins per operator name, with back-off."""

    def __init__(self, *, after: int, clock: Callable[[], float]) -> None:
        self.after = after
        self.clock = clock
        self._failures: dict[str, _Failures] = {}

    def wait_s(self, name: str) -> float:
        """Seconds until ``name`` may try again (0: now)."""
        f = self._failures.get(name.casefold())
        return 0.0 if f is None else max(0.0, f.until - self.clock())

    def failed(self, name: str) -> None:
        f = self._failures.setdefault(name.casefold()[:64], _Failures())
        f.count += 1
        if f.count >= self.after:
            wait = min(LOCKOUT_MAX_S, LOCKOUT_FIRST_S * 2 ** (f.count - self.after))
            f.until = self.clock() + wait

    def succeeded(self, name: str) -> None:
        self._failures.pop(name.casefold(), None)


def operator_by_token(session: Session, token: str) -> Operator | None:
    """The active operator whose API token this is, or ``None``."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    found: Operator | None = None
    for op in operator_store.all_operators(session):
        # Compare with every operator's hash, so the time does not tell which matched.
        if op.token_hash is not None and verify_token(op.token_hash, token) and op.active:
            found = op
    return found


__all__ = [
    "COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "Lockout",
    "SessionStore",
    "WebSession",
    "operator_by_token",
]

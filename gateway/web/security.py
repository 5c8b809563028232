"""Console sessions, CSRF tokens, sign-in lock-out, and API bearer tokens.

A console session is a row of the store (table ``console_session``), so that it outlives a
restart of the process and, with several core instances on one PostgreSQL, a takeover: the
new leader accepts the sessions the old one created. The cookie holds a random session id
(256 bits); the store keeps only its SHA-256, with the operator, the instants of sign-in and
of last use (the core's wall clock, UTC), the CSRF token and the chosen language, so that what
the store holds cannot be used as a cookie. The cookie is HttpOnly and SameSite=Strict, Secure
when the console serves TLS (or ``web.secure_cookies``).

A session ends after ``web.session_idle_s`` unused and ``web.session_max_s`` after sign-in,
whichever comes first; at sign-out; and when its operator is disabled or removed (every
session of that operator, in every process). A console request reads its session with its
operator in one read-only transaction; it records its instant as the last use only when the
recorded one is older than a minute or a tenth of ``web.session_idle_s``, whichever is less
(:data:`TOUCH_AFTER_S`), so that most requests write nothing and a session may end up to that
much earlier than ``web.session_idle_s`` after its last request. Expired rows are deleted when
a request finds its session expired and at every sign-in.

Every state-changing console request carries the session's CSRF token (a form field
``csrf_token`` or the ``X-CSRF-Token`` header); one without it is refused.

Repeated failed sign-ins of one operator name lock it out: after ``web.lockout_after``
failures each further failure doubles the wait, from 30 seconds up to 15 minutes. A success
clears the count. The count is kept by the process (a restart clears it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from gateway.auth import operators as operator_store
from gateway.auth.operators import Operator
from gateway.auth.passwords import TOKEN_PREFIX, verify_token
from gateway.store.tables import console_session

COOKIE: Final = "lockgate_session"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
LOCKOUT_FIRST_S: Final = 30.0
LOCKOUT_MAX_S: Final = 900.0
TOUCH_AFTER_S: Final = 60.0
"""A session's last use is recorded again once the recorded one is this old (or a tenth of
``web.session_idle_s``, if that is less)."""


def session_digest(sid: str) -> str:
    """The SHA-256 (hex) of session id ``sid``: what the store keeps instead of the id."""
    return hashlib.sha256(sid.encode()).hexdigest()


@dataclass
class WebSession:
    """One signed-in operator in one browser. ``sid`` is the cookie's value: it is known only
    to the browser and, during a request, to the process serving it."""

    sid: str
    operator: str
    created: datetime
    seen: datetime
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    language: str | None = None

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf, token)


class SessionStore:
    """The console's sessions in the store (table ``console_session``), with idle and
    absolute expiry on the wall clock ``now``. Every method runs in a transaction of the
    caller's (on the core thread); :meth:`read` needs only a read-only one."""

    def __init__(self, *, idle_s: float, max_s: float, now: Callable[[], datetime]) -> None:
        self.idle_s = idle_s
        self.max_s = max_s
        self.now = now
        self.touch_after_s = min(TOUCH_AFTER_S, idle_s / 10)
        """A request records its instant as the session's last use only when the recorded one
        is older than this (so that most requests write nothing)."""

    def expired(self, session: WebSession, now: datetime) -> bool:
        return (now - session.seen).total_seconds() > self.idle_s or (
            now - session.created
        ).total_seconds() > self.max_s

    def stale(self, session: WebSession, now: datetime) -> bool:
        """Whether ``session``'s recorded last use is old enough to record ``now``."""
        return (now - session.seen).total_seconds() >= self.touch_after_s

    def create(self, s: Session, operator: str) -> WebSession:
        """A new session of ``operator``; the sessions that have expired are deleted."""
        now = self.now()
        self.sweep(s, now)
        session = WebSession(secrets.token_urlsafe(32), operator, now, now)
        s.execute(
            insert(console_session).values(
                id_hash=session_digest(session.sid),
                operator=operator,
                created_at=now,
                seen_at=now,
                csrf=session.csrf,
                language=None,
            )
        )
        return session

    def read(self, s: Session, sid: str) -> WebSession | None:
        """The stored session ``sid`` (expired or not), or ``None``."""
        row = s.execute(
            select(console_session).where(console_session.c.id_hash == session_digest(sid))
        ).first()
        if row is None:
            return None
        return WebSession(sid, row.operator, row.created_at, row.seen_at, row.csrf, row.language)

    def touch(self, s: Session, session: WebSession, now: datetime) -> None:
        """Record ``now`` as the last use of ``session`` (never moving it back)."""
        s.execute(
            update(console_session)
            .where(
                console_session.c.id_hash == session_digest(session.sid),
                console_session.c.seen_at < now,
            )
            .values(seen_at=now)
        )
        session.seen = now

    def set_language(self, s: Session, session: WebSession, language: str | None) -> None:
        s.execute(
            update(console_session)
            .where(console_session.c.id_hash == session_digest(session.sid))
            .values(language=language)
        )
        session.language = language

    def drop(self, s: Session, sid: str) -> None:
        s.execute(delete(console_session).where(console_session.c.id_hash == session_digest(sid)))

    def drop_operator(self, s: Session, operator: str) -> None:
        """End every session of ``operator`` (disabled or gone)."""
        s.execute(delete(console_session).where(console_session.c.operator == operator))

    def sweep(self, s: Session, now: datetime) -> int:
        """Delete the sessions that have expired; how many."""
        idle = now - timedelta(seconds=self.idle_s)
        born = now - timedelta(seconds=self.max_s)
        result = s.execute(
            delete(console_session).where(
                or_(console_session.c.seen_at < idle, console_session.c.created_at < born)
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


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
    "session_digest",
]

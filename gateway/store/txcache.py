"""Caches that live as long as one transaction of a session.

A command batch of the MQTT bridge runs hundreds of commands in one transaction; each appends
an audit entry (which needs the chain's head) and is authorized (which needs the operator).
Remembering both within the transaction spares a query per command. The cache is cleared when
the transaction commits and on any rollback, savepoints included, so it never outlives the
state it was read from.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

_PREFIX: Final = "lockgate.txcache."
_USED: Final = "lockgate.txcache-used"


def _clear(session: Session, *_: Any) -> None:
    if not session.info.get(_USED):
        return
    for key, value in session.info.items():
        if key.startswith(_PREFIX):
            value.clear()


def _ended(session: Session, transaction: SessionTransaction) -> None:
    # A released savepoint keeps what was read; the end of the outermost transaction does not.
    if transaction.parent is None:
        _clear(session)


def transaction_cache(session: Session, name: str) -> dict[Any, Any]:
    """The dict ``name`` of the session's current transaction."""
    key = _PREFIX + name
    cache: dict[Any, Any] | None = session.info.get(key)
    if cache is None:
        cache = {}
        session.info[key] = cache
        session.info[_USED] = True
    return cache


# One listener for the class: a listener per session would be set up anew in every
# transaction.
event.listen(Session, "after_transaction_end", _ended)
event.listen(Session, "after_soft_rollback", _clear)


__all__ = ["transaction_cache"]

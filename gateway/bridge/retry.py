"""Retrying database work that failed for reasons outside the request (a lost connection, a
lock held too long), with exponential backoff and jitter, for as long as it takes."""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError, OperationalError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

MAX_WAIT_S = 10.0


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a database failure worth retrying as is (the connection, a lock),
    as opposed to an error of the work itself."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def retrying(log: logging.Logger, what: str) -> AsyncRetrying:
    """``async for attempt in retrying(log, "...")``: retries transient database errors."""

    def warn(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning("database unavailable while %s (%s); retrying", what, error)

    return AsyncRetrying(
        retry=retry_if_exception(transient),
        wait=wait_exponential_jitter(multiplier=0.2, max=MAX_WAIT_S),
        before_sleep=warn,
        reraise=True,
    )


__all__ = ["retrying", "transient"]

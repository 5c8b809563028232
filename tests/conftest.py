"""Shared fixtures: a private Mosquitto broker, a private PostgreSQL database, SQLite files,
and a guard that fails any test leaving threads or sockets behind."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator

import psutil
import pytest
from hypothesis import HealthCheck, settings

from gateway.demo.broker import BrokerUnavailable, PrivateMosquitto

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get(
    "LOCKGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

# Locally, Hypothesis explores new examples on every run and replays the failures it found
# (its database in .hypothesis/, not in the repository). CI runs derandomized: the examples are
# a function of each test, so a run on a clean clone is the same run every time. Hypothesis
# ties derandomize=True to database=None (giving both is an error), so the failures worth
# keeping are kept in the tests themselves, as @example cases and named regression tests, where
# every profile runs them; print_blob lets a CI failure be replayed locally with
# @reproduce_failure.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60
)
settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=60,
    derandomize=True,
    database=None,
    print_blob=True,
)
settings.load_profile("ci" if IN_CI else "default")


def _unavailable(reason: str) -> None:
    """Skip outside CI (saying how to enable the test); fail in CI, where it must run."""
    if IN_CI:
        pytest.fail(f"required service missing in CI: {reason}")
    pytest.skip(reason)


# --------------------------------------------------------------------------------- broker


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[PrivateMosquitto]:
    """A private Mosquitto for this test session (per xdist worker), on a free port."""
    try:
        broker = PrivateMosquitto()
        broker.start()
    except BrokerUnavailable as exc:
        _unavailable(f"{exc}; install mosquitto to run the MQTT tests")
        raise
    yield broker
    broker.cleanup()


@pytest.fixture
def broker(mosquitto: PrivateMosquitto) -> PrivateMosquitto:
    """The session broker, restarted if an earlier test stopped or killed it."""
    if not mosquitto.running:
        mosquitto.start()
    return mosquitto


# --------------------------------------------------------------------------------- databases


def _pg_admin_engine():  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Admin URL of the local PostgreSQL server (127.0.0.1:5432, trust auth)."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    engine = _pg_admin_engine()
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except OperationalError as exc:
        engine.dispose()
        _unavailable(
            f"no PostgreSQL at {PG_ADMIN_URL} ({type(exc).__name__}); start one or set "
            "LOCKGATE_TEST_PG to an admin URL to run the PostgreSQL tests"
        )
        raise
    engine.dispose()
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """URL of a fresh PostgreSQL database, dropped after the test."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    name = f"lockgate_test_{uuid.uuid4().hex[:12]}"
    engine = _pg_admin_engine()
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_server).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    return f"sqlite:///{tmp_path}/lockgate.db"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[str]:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/lockgate.db"
    else:
        yield request.getfixturevalue("pg_url")


# --------------------------------------------------------------------------------- leak guard


def _inet_sockets() -> set[tuple[object, object, str]]:
    conns = psutil.Process().net_connections(kind="inet")
    return {(c.laddr, c.raddr, c.status) for c in conns}


def _threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


class _PendingTaskRecorder(logging.Handler):
    """Catches asyncio's report of a task garbage-collected while still pending (a task
    that was started and never cancelled and awaited)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "Task was destroyed but it is pending" in message:
            self.messages.append(message.splitlines()[-1][:300])


@pytest.fixture(autouse=True)
def no_leaked_threads_or_sockets() -> Iterator[None]:
    """Fail a test that leaves a thread running, an inet socket open or an asyncio task
    pending behind it."""
    recorder = _PendingTaskRecorder()
    logging.getLogger("asyncio").addHandler(recorder)
    _LEFT_RUNNING.clear()
    try:
        yield from _no_leaked_threads_or_sockets()
        gc.collect()
    finally:
        logging.getLogger("asyncio").removeHandler(recorder)
    if _LEFT_RUNNING:
        pytest.fail("asyncio tasks left running when the loop closed: " + ", ".join(_LEFT_RUNNING))
    if recorder.messages:
        pytest.fail("asyncio tasks left pending: " + "; ".join(recorder.messages))


def _no_leaked_threads_or_sockets() -> Iterator[None]:
    threads_before = _threads()
    sockets_before = _inet_sockets()
    yield
    deadline = time.monotonic() + 3.0
    while True:
        new_threads = {t for t in _threads() - threads_before if not t.name.startswith("pydevd")}
        new_sockets = {
            s for s in _inet_sockets() - sockets_before if s[2] not in ("TIME_WAIT", "CLOSE_WAIT")
        }
        if not new_threads and not new_sockets:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    problems = []
    if new_threads:
        problems.append("threads left running: " + ", ".join(sorted(t.name for t in new_threads)))
    if new_sockets:
        problems.append("sockets left open: " + ", ".join(sorted(map(str, new_sockets))))
    pytest.fail("; ".join(problems))


_LEFT_RUNNING: list[str] = []
_cancel_all_tasks = asyncio.runners._cancel_all_tasks  # type: ignore[attr-defined]


def _recording_cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """asyncio.Runner cancels what a test left running when its loop closes; note the
    names first, so that the leak guard can fail the test."""
    _LEFT_RUNNING.extend(sorted(t.get_name() for t in asyncio.all_tasks(loop) if not t.done()))
    _cancel_all_tasks(loop)


asyncio.runners._cancel_all_tasks = _recording_cancel_all_tasks  # type: ignore[attr-defined]

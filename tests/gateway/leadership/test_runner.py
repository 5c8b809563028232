"""``CoreLeadership`` in one process on a real PostgreSQL (MQTT off): a standby waits, a
graceful stop hands the lease over at once, a leader whose write is fenced out steps down,
and SQLite always leads."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select, text

from gateway.compose import build_core_role
from gateway.config import Settings
from gateway.leadership import CoreLeadership
from gateway.store import migrate
from gateway.store.database import Database
from tests.gateway.leadership.cluster import LOCKGATE


def _settings(url: str, lease_s: float = 2.0, renew_s: float = 0.5) -> Settings:
    return Settings(
        database={"url": url},
        mqtt={"enabled": False},
        leadership={"lease_s": lease_s, "renew_s": renew_s, "lock_timeout_s": 0.5},
    )


async def _until(check: Callable[[], bool], limit_s: float = 15.0) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > limit_s:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@pytest.mark.postgres
def test_a_standby_waits_and_takes_over_at_once_after_a_graceful_stop(pg_url: str) -> None:
    migrate.upgrade(pg_url)

    async def main() -> None:
        a, b = build_core_role(_settings(pg_url)), build_core_role(_settings(pg_url))
        stop_a, stop_b = asyncio.Event(), asyncio.Event()
        run_a = asyncio.create_task(a.run(stop_a), name="test-core-a")
        await _until(lambda: a.state == "leader")
        run_b = asyncio.create_task(b.run(stop_b), name="test-core-b")
        try:
            await asyncio.sleep(1.5)  # several tries of the standby
            assert (a.state, b.state) == ("leader", "standby")
            assert b.gateway is None, "a standby runs no gateway (and no broker session)"
            token = a.token
            assert token is not None
            stop_a.set()
            took = await _until(lambda: b.state == "leader")
            assert took < 2.0, "a released lease is taken at the standby's next try"
            assert b.token == token + 1
            await run_a
            assert a.state == "stopped"
        finally:
            stop_a.set()
            stop_b.set()
            await asyncio.gather(run_a, run_b)

    asyncio.run(main())


@pytest.mark.postgres
def test_a_leader_whose_write_is_fenced_out_steps_down(pg_url: str) -> None:
    migrate.upgrade(pg_url)

    async def main() -> None:
        a = build_core_role(_settings(pg_url, lease_s=20.0, renew_s=10.0))
        stop = asyncio.Event()
        run = asyncio.create_task(a.run(stop), name="test-core-a")
        try:
            await _until(lambda: a.state == "leader")
            gateway = a.gateway
            assert gateway is not None
            # Another instance takes the lease (as after this one froze for a while).
            admin = Database(pg_url)
            with admin.engine.begin() as conn:
                conn.execute(
                    text(
                        "UPDATE leader_lease SET token = token + 1, holder = :h, "
                        "expires_at = clock_timestamp() + interval '1 hour'"
                    ),
                    {"h": "c" * 32},
                )
            admin.dispose()

            def write() -> None:
                with gateway.core.db.session() as s:
                    s.execute(select(1))

            with pytest.raises(Exception, match="fenced out"):
                await gateway.call(write)
            await _until(lambda: a.state == "standby")
            assert a.step_down_reason is not None and "fenced out" in a.step_down_reason
            assert a.gateway is None
        finally:
            stop.set()
            await run

    asyncio.run(main())


def test_sqlite_always_leads(sqlite_url: str) -> None:
    migrate.upgrade(sqlite_url)

    async def main() -> None:
        core = build_core_role(_settings(sqlite_url))
        assert isinstance(core, CoreLeadership) and core.lease is None
        stop = asyncio.Event()
        run = asyncio.create_task(core.run(stop), name="test-core")
        try:
            await _until(lambda: core.state == "leader")
            assert core.token == 0
        finally:
            stop.set()
            await run

    asyncio.run(main())


def test_a_core_refuses_a_database_without_the_current_schema(tmp_path: Path) -> None:
    """A core never migrates: it exits (code 1) and says what to run."""
    result = subprocess.run(
        [LOCKGATE, "--db", f"sqlite:///{tmp_path}/empty.db", "run", "--role", "core"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "lockgate db upgrade" in result.stderr
    assert "became the leader" not in result.stderr


def test_leadership_settings_are_checked_naming_the_option() -> None:
    from gateway.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match=r"leadership\.renew_s: .*half of lease_s"):
        load_settings(leadership={"lease_s": 2.0, "renew_s": 1.5})
    with pytest.raises(ConfigError, match=r"leadership\.lease_s"):
        load_settings(leadership={"lease_s": 0.1})
    assert load_settings(leadership={"lease_s": 10.0, "renew_s": 2.0}).leadership.renew_s == 2.0


@pytest.mark.parametrize(
    ("public_url", "why"),
    [
        ("lockgate-a:8080", "no http:// or https:// scheme"),
        ("ftp://lockgate-a/", "no http:// or https:// scheme"),
        ("https:///console", "names no host"),
        ("https://lockgate-a/?next=1", "query or fragment"),
        ("https://lockgate-a:99999/", "not a valid URL"),
        ("https://desk:secret@lockgate-a/", "user name or password"),
        ("https://lockgate-a/ desk", "is not a URL"),
    ],
)
def test_a_bad_web_public_url_is_refused_naming_the_option(public_url: str, why: str) -> None:
    from gateway.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match=r"^config: web\.public_url: ") as info:
        load_settings(web={"public_url": public_url})
    assert why in str(info.value) and "Value error" not in str(info.value)
    assert "secret" not in str(info.value)


def test_web_public_url_is_the_console_url_else_derived_from_the_address() -> None:
    from gateway.config import load_settings

    web = load_settings(web={"public_url": "https://lockgate-a.example.com"}).web
    assert web.public_url == "https://lockgate-a.example.com/"
    assert web.console_url(8080) == "https://lockgate-a.example.com/"
    derived = load_settings(web={"address": "core-a.lan:8443", "tls_cert_file": "c.pem"}).web
    assert derived.console_url() == "https://core-a.lan:8443/"
    assert load_settings(web={"address": "127.0.0.1:0"}).web.console_url(41234) == (
        "http://127.0.0.1:41234/"
    )
    assert load_settings(web={"address": "0.0.0.0:8080"}).web.console_url() is None


def test_a_core_with_a_bad_web_public_url_exits_2_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "core.toml"
    config.write_text('[web]\nenabled = true\npublic_url = "lockgate-a:8080"\n')
    result = subprocess.run(
        [
            LOCKGATE,
            "--db",
            f"sqlite:///{tmp_path}/lockgate.db",
            "run",
            "--role",
            "core",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "web.public_url" in result.stderr and "lockgate-a:8080" in result.stderr
    assert "http:// or https://" in result.stderr

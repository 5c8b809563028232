"""A running gateway on a SQLite file with the sample site, one operator per role (each with
a password and an API token), and the console/API application served in-process."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from gateway.auth import manage
from gateway.auth.authorizer import Authorizer
from gateway.auth.passwords import hash_password, hash_token
from gateway.auth.roles import ROLES
from gateway.compose import build_core, build_gateway
from gateway.config import Settings
from gateway.core import Core, Submission
from gateway.domain.timeutil import utcnow
from gateway.runtime import Gateway
from gateway.store import migrate
from gateway.web import KeyDesk, create_app
from tests.sample import sample_commands

PASSWORD = "correct horse battery"
ADMIN = "admin"


def role_operator(role: str) -> str:
    return f"op-{role}"


def role_token(role: str) -> str:
    return f"lgt_test-token-of-{role}-0123456789"


@dataclass
class Clock:
    """The console's clocks, moved by hand: seconds for the sign-in lock-out, and the wall
    clock console sessions expire on (:meth:`instant`, that many seconds after ``start``)."""

    now: float = 1000.0
    start: datetime = field(default_factory=utcnow)

    def __call__(self) -> float:
        return self.now

    def instant(self) -> datetime:
        return self.start + timedelta(seconds=self.now)


@dataclass
class Site:
    gateway: Gateway
    app: FastAPI
    clock: Clock
    desk: KeyDesk
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self) -> httpx.AsyncClient:
        c = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://console.test"
        )
        self.clients.append(c)
        return c

    async def signed_in(self, role: str) -> tuple[httpx.AsyncClient, str]:
        """A client signed in as the operator of ``role``, and its CSRF token."""
        c = self.client()
        r = await c.post(
            "/login", data={"operator": role_operator(role), "password": PASSWORD, "next": "/"}
        )
        assert r.status_code == 303, r.text
        page = await c.get("/credentials")
        assert page.status_code == 200
        return c, csrf_of(page.text)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def web_settings(db_url: str) -> Settings:
    return Settings.model_validate(
        {"database": {"url": db_url}, "mqtt": {"enabled": False}, "sync": {"tick_s": 0.2}}
    )


def register_operators(core: Core) -> None:
    hashed = hash_password(PASSWORD)

    def work(s: object) -> None:
        from sqlalchemy.orm import Session

        assert isinstance(s, Session)
        now = core.clock()
        manage.bootstrap(s, name=ADMIN, at=now, password_hash=hashed)
        authorizer = core.authorizer
        assert isinstance(authorizer, Authorizer)
        for role in ROLES:
            manage.add_operator(
                s,
                authorizer,
                ADMIN,
                name=role_operator(role),
                role=role,
                at=now,
                password_hash=hashed,
                token_hash=hash_token(role_token(role)),
            )

    core.transaction(work)


@pytest.fixture(scope="session")
def site_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the sample site and the operators, made once and copied for each test."""
    folder = tmp_path_factory.mktemp("web-template")
    url = f"sqlite:///{folder / 'web.db'}"
    migrate.upgrade(url)
    core = build_core(web_settings(url))
    try:
        core.load()
        register_operators(core)
        outcomes = core.submit_many([Submission(c, ADMIN) for c in sample_commands(date.today())])
        assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    finally:
        core.db.dispose()
    return folder


@pytest.fixture
def site_db(tmp_path: Path, site_template: Path) -> Path:
    """This test's copy of the template store."""
    for f in site_template.iterdir():
        shutil.copy(f, tmp_path / f.name)
    return tmp_path / "web.db"


@pytest.fixture
async def site(site_db: Path) -> AsyncIterator[Site]:
    settings = web_settings(f"sqlite:///{site_db}")
    gateway = build_gateway(settings, upgrade=False)
    clock = Clock()
    desk = KeyDesk()
    await gateway.start()
    try:
        app = create_app(gateway, desk=desk, clock=clock, now=clock.instant)
        s = Site(gateway, app, clock, desk)
        yield s
        for c in s.clients:
            await c.aclose()
    finally:
        await gateway.stop()


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """The chromium and chromedriver binaries, installed with apt-get when missing."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        subprocess.run(["apt-get", "update", "-q"], check=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"],
            check=True,
            timeout=900,
            env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert browser and driver, "chromium and chromium-driver could not be installed"
    return browser, driver

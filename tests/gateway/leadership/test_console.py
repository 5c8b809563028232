"""The web console of ``lockgate run --role core``: two core processes with ``web.enabled``
on one PostgreSQL, each serving the console on its own port over real HTTP. The leader's
console signs in and applies a change; the standby's answers 503 naming the leader and its
console URL (pages, sign-in and API alike; a browser page links to the same page at the
leader, never a redirect) and ``/healthz`` reports who leads and where; after ``kill -9`` of
the leader the standby takes over and its console signs in and changes, and the old leader,
started again, stands by and names the new leader's URL. A change that reaches a leader after
another instance took the lease is refused by the database and answered 503, not applied."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gateway.auth import operators
from gateway.auth.passwords import hash_password, hash_token
from gateway.compose import build_gateway
from gateway.config import Settings
from gateway.domain.timeutil import utcnow
from gateway.leadership import LeaseStore
from gateway.store import tables
from gateway.store.database import Database
from gateway.store.fencing import Fence
from gateway.web import create_app
from gateway.web.roles import LeaderInfo, RoleReport
from gateway.web.security import COOKIE
from tests.gateway.leadership.cluster import LOCKGATE, steal_lease
from tests.gateway.web.conftest import csrf_of
from tests.trial_load import prepare

pytestmark = pytest.mark.postgres

OPERATOR = "desk"
PASSWORD = "correct horse battery"
TOKEN = "lgt_test-token-of-the-desk-0123456789"
LEASE_S = 2.0
RENEW_S = 0.3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(url: str) -> None:
    """The trial workload's schema and person, and an operator with a password and token."""
    prepare(url)
    db = Database(url)
    try:
        with db.session() as s:
            operators.add(
                s,
                name=OPERATOR,
                role="administrator",
                created_by="test",
                password_hash=hash_password(PASSWORD),
                token_hash=hash_token(TOKEN),
                at=utcnow(),
            )
    finally:
        db.dispose()


def _change(code: str) -> dict[str, Any]:
    """A competence of the trial person (the body of the ``competence`` request)."""
    valid = (date.today() + timedelta(days=30)).isoformat()
    return {"competence": {"person_id": "p-trial", "code": code, "valid_until": valid}}


def _applied(url: str, request_id: str) -> int:
    """How many times the store recorded request ``request_id`` (the inbox)."""
    db = Database(url)
    try:
        with db.session(readonly=True) as s:
            return int(
                s.execute(
                    select(func.count())
                    .select_from(tables.inbox)
                    .where(tables.inbox.c.request_id == request_id)
                ).scalar_one()
            )
    finally:
        db.dispose()


class WebCore:
    """One ``lockgate run --role core`` process with the console on its own port."""

    def __init__(self, folder: Path, name: str, url: str, *, public: str | None = None) -> None:
        """``public``: ``web.public_url`` with ``{port}`` for the port (unset: derived)."""
        self.name = name
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.public_url = public.format(port=self.port) if public is not None else f"{self.base}/"
        """The console URL the lease should record for this instance."""
        public_line = f'public_url = "{self.public_url}"\n' if public is not None else ""
        self.config = folder / f"{name}.toml"
        self.config.write_text(
            f'[database]\nurl = "{url}"\n[mqtt]\nenabled = false\n'
            f"[leadership]\nlease_s = {LEASE_S}\nrenew_s = {RENEW_S}\n"
            f"lock_timeout_s = {RENEW_S}\n"
            f'[web]\nenabled = true\naddress = "127.0.0.1:{self.port}"\n{public_line}'
        )
        self.log_path = folder / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    LOCKGATE,
                    "run",
                    "--role",
                    "core",
                    "--config",
                    str(self.config),
                    "--log-format",
                    "json",
                ],
                stdout=out,
                stderr=out,
            )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def health(self) -> dict[str, Any] | None:
        try:
            r = httpx.get(f"{self.base}/healthz", timeout=2)
        except httpx.TransportError:
            assert self.proc is not None and self.proc.poll() is None, self.log_path.read_text()
            return None
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def wait_role(self, role: str, limit_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + limit_s
        while True:
            health = self.health()
            if health is not None and health["role"] == role:
                return health
            assert time.monotonic() < deadline, f"{self.name}: not {role} within {limit_s:g} s"
            time.sleep(0.05)

    def wait_leader_named(self, instance: str, limit_s: float) -> dict[str, Any]:
        """The health of this standby once it has read the lease of leader ``instance``."""
        deadline = time.monotonic() + limit_s
        while True:
            health = self.wait_role("standby", limit_s)
            if health["leader"] is not None and health["leader"]["instance"] == instance:
                return health
            assert time.monotonic() < deadline, f"{self.name}: {instance} not named in time"
            time.sleep(0.05)


@pytest.fixture
def cores(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, WebCore, WebCore]]:
    _prepare(pg_url)
    # core-a with web.public_url (a name, not its bind address), core-b derived from its address.
    a = WebCore(tmp_path, "core-a", pg_url, public="http://localhost:{port}/")
    b = WebCore(tmp_path, "core-b", pg_url)
    try:
        yield pg_url, a, b
    finally:
        a.stop()
        b.stop()


def _sign_in(c: httpx.Client) -> httpx.Response:
    return c.post("/login", data={"operator": OPERATOR, "password": PASSWORD, "next": "/"})


def _apply(c: httpx.Client, key: str, code: str) -> httpx.Response:
    return c.post(
        "/api/v1/requests/competence",
        json=_change(code),
        headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": key},
    )


@pytest.mark.slow
def test_the_leader_serves_the_console_a_standby_names_it_and_takes_over_after_kill_9(
    cores: tuple[str, WebCore, WebCore],
) -> None:
    url, a, b = cores
    a.start()
    leader = a.wait_role("leader", 20)
    a_id = leader["instance"]
    assert leader["leader"]["instance"] == a_id
    assert a.public_url == f"http://localhost:{a.port}/"
    assert leader["url"] == leader["leader_url"] == a.public_url
    b.start()
    standby = b.wait_leader_named(a_id, 20)  # the standby's first read of the lease
    assert (standby["leader_url"], standby["url"]) == (a.public_url, f"{b.base}/")

    with httpx.Client(base_url=a.base, timeout=10) as ca:
        assert _sign_in(ca).status_code == 303
        page = ca.get("/credentials")
        assert page.status_code == 200 and "csrf_token" in page.text
        cookie = ca.cookies[COOKIE]
        csrf = csrf_of(page.text)
        done = _apply(ca, "console-1", "WEBA0001")
        assert done.status_code == 200 and done.json()["status"] == "ok", done.text
        ready = ca.get("/readyz")
        assert ready.status_code == 200 and ready.json()["role"] == "leader", ready.text
        assert "lockgate_core_leader 1.0" in ca.get("/metrics").text

    with httpx.Client(base_url=b.base, timeout=10) as cb:
        cb.cookies.set(COOKIE, cookie)  # a session of the leader's: the standby still refuses
        for refused in (
            cb.get("/login", headers={"Accept": "text/html"}),
            _sign_in(cb),
            _apply(cb, "console-2", "WEBB0001"),
            cb.get("/readyz"),
            cb.get("/credentials"),
        ):
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "1"
            assert "location" not in refused.headers, "a standby never redirects"
            assert "standby" in refused.text and a_id in refused.text, refused.text
            assert a.public_url in refused.text, refused.text
        scraped = cb.get("/metrics")
        assert scraped.status_code == 200 and "lockgate_core_leader 0.0" in scraped.text
        api = _apply(cb, "console-2", "WEBB0001").json()
        assert api["error"]["code"] == "NOT_LEADER"
        assert (api["role"], api["leader"]["instance"]) == ("standby", a_id)
        assert api["leader_url"] == a.public_url
        assert cb.get("/readyz").json()["leader_url"] == a.public_url
        page = cb.get("/credentials?q=WEB", headers={"Accept": "text/html"})
        assert page.status_code == 503
        link = f'href="{a.public_url}credentials?q=WEB"'
        assert link in page.text, page.text
    with httpx.Client(timeout=10) as browser:  # the link leads to the leader's console
        there = browser.get(f"{a.public_url}login", headers={"Accept": "text/html"})
        assert there.status_code == 200 and 'id="sign-in"' in there.text, there.text
    assert _applied(url, "console-2") == 0, "the standby applied nothing"

    a.kill()
    taken = b.wait_role("leader", 20)
    b_id = taken["instance"]
    assert b_id != a_id
    assert taken["leader_url"] == f"{b.base}/", "the new leader's URL, derived from its address"
    with httpx.Client(base_url=b.base, timeout=10) as kept:
        # The session signed in at the killed leader goes on at the new one.
        kept.cookies.set(COOKIE, cookie)
        page = kept.get("/credentials")
        assert page.status_code == 200, page.text
        assert csrf_of(page.text) == csrf
        chosen = kept.post("/language", data={"csrf_token": csrf, "language": "sv"})
        assert chosen.status_code == 303, chosen.text
        assert 'lang="sv"' in kept.get("/credentials").text
    with httpx.Client(base_url=b.base, timeout=10) as cb:
        assert _sign_in(cb).status_code == 303
        done = _apply(cb, "console-3", "WEBB0002")
        assert done.status_code == 200 and done.json()["status"] == "ok", done.text
    assert _applied(url, "console-1") == 1
    assert _applied(url, "console-3") == 1

    # The old leader comes back as a standby and sends people to the new leader.
    a.start()
    back = a.wait_leader_named(b_id, 20)
    assert (back["leader_url"], back["url"]) == (f"{b.base}/", a.public_url)
    with httpx.Client(base_url=a.base, timeout=10) as ca:
        api = _apply(ca, "console-4", "WEBA0002")
        assert api.status_code == 503 and api.json()["leader_url"] == f"{b.base}/", api.text
        page = ca.get("/credentials", headers={"Accept": "text/html"})
        assert page.status_code == 503 and f'href="{b.base}/credentials"' in page.text
        ready = ca.get("/readyz")
        assert ready.status_code == 503 and "location" not in ready.headers
    assert _applied(url, "console-4") == 0
    assert a.stop() == 0
    assert b.stop() == 0


async def test_a_change_reaching_a_deposed_leader_is_fenced_out_and_answered_503(
    pg_url: str,
) -> None:
    _prepare(pg_url)
    lease = LeaseStore(pg_url, lease_s=30, lock_timeout_s=1)
    won = lease.acquire("a" * 32, "host-a")
    assert won is not None
    db = Database(pg_url)
    db.set_fence(Fence(won.token))
    settings = Settings.model_validate({"database": {"url": pg_url}, "mqtt": {"enabled": False}})
    gateway = build_gateway(settings, upgrade=False, db=db)
    await gateway.start()
    try:
        new_token = steal_lease(pg_url, "b" * 32, 30)
        report = RoleReport(
            "standby", "stopping", "a" * 32, "host-a", LeaderInfo("b" * 32, "host-b", new_token)
        )
        app = create_app(gateway, role=lambda: report)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://core.test"
        ) as c:
            r = await c.post(
                "/api/v1/requests/competence",
                json=_change("FENCED01"),
                headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "fenced-1"},
            )
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["error"]["code"] == "NOT_LEADER"
            assert "fenced out" in body["error"]["message"]
            assert "b" * 32 in body["error"]["message"]
            signin = await c.post(
                "/login",
                headers={"Accept": "text/html"},
                data={"operator": OPERATOR, "password": PASSWORD},
            )
            assert signin.status_code == 503 and "fenced out" in signin.text
    finally:
        await gateway.stop()
        lease.dispose()
    assert _applied(pg_url, "fenced-1") == 0
    assert body["leader"]["instance"] == "b" * 32


async def test_a_session_outlives_its_gateway_on_postgresql_and_sign_out_ends_it(
    pg_url: str,
) -> None:
    """Two gateways one after the other on one PostgreSQL (a restart, or a takeover): the
    second accepts the session the first signed in, which the store holds only by its hash."""
    _prepare(pg_url)
    settings = Settings.model_validate({"database": {"url": pg_url}, "mqtt": {"enabled": False}})
    cookie = csrf = ""
    for first in (True, False):
        gateway = build_gateway(settings, upgrade=False)
        await gateway.start()
        try:
            app = create_app(gateway)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://core.test"
            ) as c:
                if first:
                    assert (await c.post("/login", data=_credentials())).status_code == 303
                    cookie = c.cookies[COOKIE]
                    csrf = csrf_of((await c.get("/credentials")).text)
                    continue
                c.cookies.set(COOKIE, cookie)
                page = await c.get("/credentials")
                assert page.status_code == 200 and csrf_of(page.text) == csrf, page.text
                with gateway.db.session(readonly=True) as s:
                    (row,) = s.execute(select(tables.console_session)).all()
                assert row.id_hash == hashlib.sha256(cookie.encode()).hexdigest()
                assert cookie not in {str(v) for v in row}
                assert row.created_at.utcoffset() == timedelta(0)
                assert (await c.post("/logout", data={"csrf_token": csrf})).status_code == 303
                c.cookies.set(COOKIE, cookie)
                assert (await c.get("/credentials")).status_code == 303
                with gateway.db.session(readonly=True) as s:
                    assert s.execute(select(tables.console_session)).all() == []
        finally:
            await gateway.stop()


def _credentials() -> dict[str, str]:
    return {"operator": OPERATOR, "password": PASSWORD, "next": "/"}

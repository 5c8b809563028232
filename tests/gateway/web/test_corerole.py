"""The console of ``lockgate run --role core`` in-process, over real HTTP: before this
instance leads every request but ``/healthz`` is 503 naming the situation; once it leads (on
SQLite at once) the leader's console signs in and serves; the role report names the leader a
standby read from the lease."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from gateway.compose import build_core_role
from gateway.leadership import CoreLeadership, LeaseView
from gateway.web import create_app
from gateway.web.corerole import CoreConsole, role_report
from gateway.web.roles import LeaderInfo, RoleReport
from tests.gateway.web.conftest import PASSWORD, Site, role_operator, role_token, web_settings


async def test_the_core_console_answers_503_until_it_leads_then_serves(site_db: Path) -> None:
    settings = web_settings(f"sqlite:///{site_db}")
    settings = settings.model_copy(
        update={"web": settings.web.model_copy(update={"address": "127.0.0.1:0"})}
    )
    console = CoreConsole(settings.web)
    leadership = build_core_role(settings, extra_services=[console.leader_console])
    console.follow(leadership)
    await console.start()
    stop = asyncio.Event()
    runner: asyncio.Task[None] | None = None
    try:
        async with httpx.AsyncClient(base_url=console.url, timeout=10) as c:
            health = (await c.get("/healthz")).json()
            assert (health["role"], health["leader"]) == ("standby", None)
            page = await c.get("/login", headers={"Accept": "text/html"})
            assert page.status_code == 503 and "no instance leads" in page.text
            api = await c.get("/api/v1/devices")
            assert api.status_code == 503 and api.json()["error"]["code"] == "NOT_LEADER"
            assert (await c.get("/readyz")).status_code == 503

            runner = asyncio.create_task(leadership.run(stop), name="test-core")
            for _ in range(500):
                if (await c.get("/healthz")).json()["role"] == "leader":
                    break
                await asyncio.sleep(0.02)
            health = (await c.get("/healthz")).json()
            assert health["role"] == "leader" and health["leader"]["token"] == 0
            signed = await c.post(
                "/login",
                data={"operator": role_operator("administrator"), "password": PASSWORD},
            )
            assert signed.status_code == 303, signed.text
            assert (await c.get("/credentials")).status_code == 200
            assert (await c.get("/readyz")).json()["role"] == "leader"
    finally:
        stop.set()
        if runner is not None:
            with contextlib.suppress(Exception):
                await runner
        await console.stop()


def test_a_standby_names_the_leader_it_read_and_not_an_expired_one() -> None:
    standby = CoreLeadership(lambda fence, instance: None, lease=None, renew_s=1.0)  # type: ignore[arg-type, return-value]
    now = datetime.now(UTC)

    def seen(holder: str, ends_in_s: float) -> LeaseView:
        ends = now + timedelta(seconds=ends_in_s)
        return LeaseView("core", 7, holder, "core-a pid 1", now, ends, now)

    standby.seen = seen("a" * 32, 3)
    report = role_report(standby)
    assert report.role == "standby" and report.leader is not None
    assert report.leader.as_json() == {"instance": "a" * 32, "host": "core-a pid 1", "token": 7}
    assert "a" * 32 in report.refusal()
    standby.seen = seen("a" * 32, -1)
    assert role_report(standby).leader is None, "an expired lease names nobody"
    standby.seen = seen(standby.instance, 3)
    assert role_report(standby).leader is None, "a deposed leader does not name itself"


async def test_a_request_under_way_when_the_leader_steps_down_is_answered_503(
    site: Site,
) -> None:
    report = RoleReport("standby", "stopping", "a" * 32, "core-a pid 1",
                        LeaderInfo("b" * 32, "core-b pid 2", 8))
    app = create_app(site.gateway, role=lambda: report)
    await site.gateway.stop()  # the step-down stops the gateway under the request
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://core.test") as c:
        bearer = {"Authorization": f"Bearer {role_token('system')}"}
        r = await c.get("/api/v1/devices", headers=bearer)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "NOT_LEADER" and "b" * 32 in r.text

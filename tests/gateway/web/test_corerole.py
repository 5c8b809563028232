"""The console of ``lockgate run --role core`` in-process, over real HTTP: before this
instance leads every request but ``/healthz`` is 503 naming the situation; once it leads (on
SQLite at once) the leader's console signs in and serves; the role report names the leader a
standby read from the lease."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gateway.compose import build_core_role
from gateway.config import WebSettings
from gateway.leadership import CoreLeadership, LeaseView
from gateway.web import create_app
from gateway.web.corerole import CoreConsole, RoleDispatch, role_report
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
            # web.address 127.0.0.1:0 and no public_url: derived, with the port bound.
            assert health["url"] == console.url and not console.url.endswith(":0/")
            assert health["leader_url"] is None
            assert leadership.console_url == console.url, "what the lease will record"
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
            assert health["leader_url"] == health["leader"]["url"] == console.url
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

    def seen(
        holder: str, ends_in_s: float, url: str | None = "https://core-a.example.com/"
    ) -> LeaseView:
        ends = now + timedelta(seconds=ends_in_s)
        return LeaseView("core", 7, holder, "core-a pid 1", now, ends, now, console_url=url)

    standby.seen = seen("a" * 32, 3)
    report = role_report(standby)
    assert report.role == "standby" and report.leader is not None
    assert report.leader.as_json() == {
        "instance": "a" * 32,
        "host": "core-a pid 1",
        "token": 7,
        "url": "https://core-a.example.com/",
    }
    assert report.as_json()["leader_url"] == "https://core-a.example.com/"
    assert "a" * 32 in report.refusal()
    assert "use its console at https://core-a.example.com/" in report.refusal()
    for stored in (None, "javascript:alert(1)", "core-a:8080"):
        standby.seen = seen("a" * 32, 3, stored)
        report = role_report(standby)
        assert report.leader is not None and report.leader_url is None, stored
        assert report.refusal().endswith(
            "(core-a pid 1, token 7): use its console, or retry in a moment"
        )
    standby.seen = seen("a" * 32, -1)
    assert role_report(standby).leader is None, "an expired lease names nobody"
    standby.seen = seen(standby.instance, 3)
    assert role_report(standby).leader is None, "a deposed leader does not name itself"


async def test_a_request_under_way_when_the_leader_steps_down_is_answered_503(
    site: Site,
) -> None:
    report = RoleReport(
        "standby", "stopping", "a" * 32, "core-a pid 1", LeaderInfo("b" * 32, "core-b pid 2", 8)
    )
    app = create_app(site.gateway, role=lambda: report)
    await site.gateway.stop()  # the step-down stops the gateway under the request
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://core.test"
    ) as c:
        bearer = {"Authorization": f"Bearer {role_token('system')}"}
        r = await c.get("/api/v1/devices", headers=bearer)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "NOT_LEADER" and "b" * 32 in r.text


def _fixed(report: RoleReport) -> RoleDispatch:
    """The dispatch of a core instance whose role report is ``report``."""
    return RoleDispatch(lambda: report)


async def test_a_standby_links_to_the_same_page_at_the_leader_and_never_redirects() -> None:
    """The leader's console URL in every 503 (``leader_url``), a link on the browser page
    (the same page at the leader for a GET), and never a ``Location``: ``/readyz`` stays a
    503 for the proxy's health check."""
    leader = LeaderInfo("b" * 32, "core-b pid 2", 8, "https://core-b.example.com/")
    report = RoleReport(
        "standby", "standby", "a" * 32, "core-a pid 1", leader, "https://core-a.example.com/"
    )
    html_accept = {"Accept": "text/html"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_fixed(report)), base_url="http://core-a.test"
    ) as c:
        page = await c.get("/credentials?q=ID06&page=2", headers=html_accept)
        assert page.status_code == 503 and "location" not in page.headers
        link = 'href="https://core-b.example.com/credentials?q=ID06&amp;page=2"'
        assert link in page.text, page.text
        odd = await c.get("/credentials/ID06 0001", headers=html_accept)
        assert 'href="https://core-b.example.com/credentials/ID06%200001"' in odd.text
        signin = await c.post("/login", headers=html_accept, data={"operator": "x"})
        assert signin.status_code == 503 and "location" not in signin.headers
        assert 'href="https://core-b.example.com/"' in signin.text
        for probe in ("/readyz", "/api/v1/devices"):
            for headers in ({}, html_accept):
                r = await c.get(probe, headers=headers)
                assert r.status_code == 503 and "location" not in r.headers, probe
                body = r.json()
                assert body["error"]["code"] == "NOT_LEADER"
                assert body["leader_url"] == "https://core-b.example.com/"
                assert body["leader"]["url"] == "https://core-b.example.com/"
                assert body["url"] == "https://core-a.example.com/"
                assert "https://core-b.example.com/" in body["error"]["message"]
        health = (await c.get("/healthz")).json()
        assert (health["leader_url"], health["url"]) == (
            "https://core-b.example.com/",
            "https://core-a.example.com/",
        )

    for unknown in (None, "javascript:alert(1)"):
        fixed = RoleReport(
            "standby",
            "standby",
            "a" * 32,
            "core-a pid 1",
            LeaderInfo("b" * 32, "core-b pid 2", 8, unknown),
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=_fixed(fixed)),
            base_url="http://core-a.test",
        ) as c:
            page = await c.get("/credentials", headers=html_accept)
            assert page.status_code == 503 and "b" * 32 in page.text
            assert "href=" not in page.text, "no link without a leader's http(s) URL"


async def test_a_console_on_every_interface_records_public_url_or_nothing_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``0.0.0.0`` names no host another machine reaches: without ``web.public_url`` the
    lease gets no console URL (and the log says to set it); with it, ``public_url``."""
    for public, expected in (
        (None, None),
        ("https://core-a.example.com", "https://core-a.example.com/"),
    ):
        web = WebSettings(enabled=True, address="0.0.0.0:0", public_url=public)
        console = CoreConsole(web)
        leadership = CoreLeadership(lambda fence, instance: None, lease=None, renew_s=1.0)  # type: ignore[arg-type, return-value]
        console.follow(leadership)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="gateway.web.corerole"):
            await console.start()
        try:
            assert leadership.console_url == expected
            port = console.http.port
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
                health = (await c.get("/healthz")).json()
            assert health["url"] == expected
            warned = [r.getMessage() for r in caplog.records if "web.public_url" in r.getMessage()]
            assert len(warned) == (1 if public is None else 0), warned
        finally:
            await console.stop()

"""The dashboard's live device table (Server-Sent Events) over a real socket, and the
service ending open streams when it stops."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.rules.engine import Changes
from gateway.store import device_records
from gateway.web.service import WebService
from tests.gateway.web.conftest import PASSWORD, Site, role_operator


@pytest.mark.slow
async def test_device_table_streams_and_follows_changes(site: Site) -> None:
    service = WebService(site.gateway.settings.web.model_copy(update={"address": "127.0.0.1:0"}))
    await service.start(site.gateway)
    try:
        async with httpx.AsyncClient(base_url=service.url.rstrip("/"), timeout=10) as c:
            r = await c.post(
                "/login", data={"operator": role_operator("auditor"), "password": PASSWORD}
            )
            assert r.status_code == 303
            async with c.stream("GET", "/live/devices") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.aiter_lines()
                first = await _event(lines)
                assert "No devices reported yet." in first

                def online() -> None:
                    core = site.gateway.core

                    def work(s: object) -> None:
                        device_records.set_device_status(
                            s,  # type: ignore[arg-type]
                            "ctrl-test",
                            "controller",
                            True,
                            "connected",
                            core.clock(),
                        )
                        core.persist(s, Changes())  # type: ignore[arg-type]

                    core.transaction(work)

                await site.gateway.call(online)
                try:
                    second = await asyncio.wait_for(_event(lines), timeout=8)
                finally:
                    await lines.aclose()
                assert "ctrl-test" in second and "online" in second
    finally:
        await service.stop()


async def _event(lines: object) -> str:
    data = []
    async for line in lines:  # type: ignore[attr-defined]
        if line.startswith("data: "):
            data.append(line[6:])
        elif not line and data:
            return "\n".join(data)
    raise AssertionError("the stream ended")

from __future__ import annotations

from tests.gateway.web.conftest import PASSWORD, Site, role_operator


async def test_sign_in_and_dashboard(site: Site) -> None:
    c = site.client()
    r = await c.get("/")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    r = await c.post("/login", data={"operator": role_operator("auditor"), "password": PASSWORD})
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    r = await c.get("/")
    assert r.status_code == 200, r.text
    assert "Dashboard" in r.text
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"

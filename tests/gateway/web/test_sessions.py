"""Console sessions kept in the store: a session outlives a restart of the gateway and its
console, the store holds only the SHA-256 of the session id, the console applications of
several processes on one store share the sessions (sign-out and a disabled operator end them
everywhere), expiry is judged on the stored instants, and a request writes the session only
when its recorded last use is stale."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from gateway.audit import log as audit_log
from gateway.auth import manage
from gateway.auth.authorizer import Authorizer
from gateway.auth.passwords import hash_password
from gateway.compose import build_gateway
from gateway.store import tables
from gateway.web import create_app
from gateway.web.security import COOKIE, TOUCH_AFTER_S
from tests.gateway.web.conftest import (
    ADMIN,
    PASSWORD,
    Clock,
    Site,
    csrf_of,
    role_operator,
    web_settings,
)


def _rows(site: Site) -> list[Any]:
    with site.gateway.db.session(readonly=True) as s:
        return list(s.execute(select(tables.console_session)).all())


def _cookie(c: httpx.AsyncClient) -> str:
    value = c.cookies.get(COOKIE)
    assert value, "no session cookie"
    return value


def _other_app(site: Site) -> httpx.AsyncClient:
    """A client of a second console application on the same gateway and store (as another
    process serving the same store would be)."""
    app = create_app(site.gateway, clock=site.clock, now=site.clock.instant)
    c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test")
    site.clients.append(c)
    return c


@contextmanager
def _session_writes(site: Site) -> Iterator[list[str]]:
    """The statements that change ``console_session`` while the block runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        text = statement.lstrip().upper()
        if "CONSOLE_SESSION" in text and not text.startswith("SELECT"):
            seen.append(statement)

    engine = site.gateway.db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_a_session_survives_a_restart_of_the_gateway(site_db: Path) -> None:
    clock = Clock()
    settings = web_settings(f"sqlite:///{site_db}")
    for restart in (False, True):
        gateway = build_gateway(settings, upgrade=False)
        await gateway.start()
        try:
            app = create_app(gateway, clock=clock, now=clock.instant)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://console.test"
            ) as c:
                if not restart:
                    r = await c.post(
                        "/login",
                        data={"operator": role_operator("issuer"), "password": PASSWORD},
                    )
                    assert r.status_code == 303, r.text
                    cookie = _cookie(c)
                    csrf = csrf_of((await c.get("/reception")).text)
                    continue
                clock.now += 60
                c.cookies.set(COOKIE, cookie)
                page = await c.get("/reception")
                assert page.status_code == 200, page.text
                assert csrf_of(page.text) == csrf, "the same session, with its CSRF token"
                r = await c.post(
                    "/language", data={"csrf_token": csrf, "language": "nb", "next": "/"}
                )
                assert r.status_code == 303
                assert 'lang="nb"' in (await c.get("/reception")).text
        finally:
            await gateway.stop()


async def test_the_store_holds_only_the_hash_of_the_session_id(site: Site) -> None:
    c, csrf = await site.signed_in("auditor")
    cookie = _cookie(c)
    (row,) = _rows(site)
    assert row.id_hash == hashlib.sha256(cookie.encode()).hexdigest()
    assert cookie not in {str(v) for v in row}
    assert (row.operator, row.csrf, row.language) == (role_operator("auditor"), csrf, None)
    assert row.created_at == row.seen_at == site.clock.instant()
    assert row.created_at.utcoffset() == timedelta(0)
    stolen = site.client()
    stolen.cookies.set(COOKIE, row.id_hash)
    assert (await stolen.get("/")).status_code == 303, "the stored hash is no cookie"


async def test_sign_out_and_a_disabled_operator_end_the_session_everywhere(site: Site) -> None:
    c, csrf = await site.signed_in("auditor")
    other = _other_app(site)
    other.cookies.set(COOKIE, _cookie(c))
    assert (await other.get("/")).status_code == 200, "the other process knows the session"
    r = await other.post("/logout", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert (await c.get("/")).status_code == 303, "signed out in every process"
    assert _rows(site) == []

    c, _ = await site.signed_in("issuer")
    c2, _ = await site.signed_in("issuer")
    kept, _ = await site.signed_in("auditor")
    other.cookies.set(COOKIE, _cookie(c))
    assert len(_rows(site)) == 3
    core = site.gateway.core

    authorizer = core.authorizer
    assert isinstance(authorizer, Authorizer)

    def disable(s: Session) -> None:
        manage.change_operator(
            s, authorizer, ADMIN, role_operator("issuer"), at=core.clock(), active=False
        )

    await site.gateway.call(core.transaction, disable)
    assert (await other.get("/")).status_code == 303
    assert (await c.get("/")).status_code == 303
    assert (await c2.get("/")).status_code == 303
    assert [r.operator for r in _rows(site)] == [role_operator("auditor")]
    assert (await kept.get("/")).status_code == 200


async def test_expiry_is_judged_on_the_stored_instants_and_deletes_the_row(site: Site) -> None:
    c, _ = await site.signed_in("auditor")
    other = _other_app(site)
    other.cookies.set(COOKIE, _cookie(c))
    site.clock.now += 899
    assert (await other.get("/")).status_code == 200
    site.clock.now += 899
    assert (await c.get("/")).status_code == 200, "last used by the other process"
    site.clock.now += 901
    assert (await other.get("/")).status_code == 303, "idle expiry"
    assert _rows(site) == []

    c, _ = await site.signed_in("auditor")
    await site.signed_in("reception")  # left idle: found expired by no request
    for _ in range(49):
        site.clock.now += 880
        assert (await c.get("/")).status_code == 200
    site.clock.now += 880
    assert len(_rows(site)) == 2, "expired rows stay until found or swept"
    assert (await c.get("/")).status_code == 303, "absolute expiry after 12 hours"
    assert len(_rows(site)) == 1
    await site.signed_in("issuer")  # a sign-in deletes the expired sessions
    assert [r.operator for r in _rows(site)] == [role_operator("issuer")]


async def test_a_request_writes_the_session_only_when_its_last_use_is_stale(site: Site) -> None:
    c, _ = await site.signed_in("auditor")
    (signed_in,) = _rows(site)
    with _session_writes(site) as writes:
        site.clock.now += TOUCH_AFTER_S - 1
        for _ in range(3):
            assert (await c.get("/")).status_code == 200
        assert writes == [], "last use is fresh: nothing written"
        (row,) = _rows(site)
        assert row.seen_at == signed_in.seen_at
        site.clock.now += 1
        assert (await c.get("/")).status_code == 200
        assert len(writes) == 1
        (row,) = _rows(site)
        assert row.seen_at == site.clock.instant()
        assert (await c.get("/")).status_code == 200
        assert len(writes) == 1


async def test_a_new_password_signs_the_operator_out_of_every_console(site: Site) -> None:
    c, _ = await site.signed_in("issuer")
    kept, _ = await site.signed_in("auditor")
    core = site.gateway.core
    authorizer = core.authorizer
    assert isinstance(authorizer, Authorizer)

    def new_password(s: Session) -> None:
        manage.change_operator(
            s,
            authorizer,
            ADMIN,
            role_operator("issuer"),
            at=core.clock(),
            password_hash=hash_password("a new long passphrase 2026"),
        )

    await site.gateway.call(core.transaction, new_password)
    assert (await c.get("/")).status_code == 303, "signed out"
    assert [r.operator for r in _rows(site)] == [role_operator("auditor")]
    assert (await kept.get("/")).status_code == 200
    with site.gateway.db.session(readonly=True) as s:
        changes = [
            e.data
            for e in audit_log.entries(s)
            if e.action == "operator.change" and e.subject == f"operator {role_operator('issuer')}"
        ]
    assert changes[-1]["console_sessions_ended"] == 1

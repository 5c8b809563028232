"""The web console of ``lockgate run --role core``: served by every core instance for the
whole life of the process, so that a load balancer or proxy may point at all of them.

:class:`CoreConsole` listens on ``web.address`` from start to stop and dispatches every
request by this instance's role (:class:`~gateway.leadership.CoreLeadership`):

- **leader** (holds the lease, its gateway runs): the console and HTTP API application of
  that gateway (:func:`gateway.web.app.create_app`), built when the gateway starts and
  dropped when it stops (console sessions are kept in the store, so that after a takeover
  the new leader accepts the sessions the old one created);
- **standby** (or a leader stepping down): HTTP 503 with ``Retry-After`` and a message that
  names this instance and the leader read from the lease table, with the leader's console URL
  (``leader_url``; a link on the browser page, never a redirect)
  (:func:`gateway.web.roles.not_leader_response`): every page, the API, sign-in, ``/readyz``;
  ``/metrics`` is only ``lockgate_core_leader 0`` (so that scraping every core works and an
  alert can see that no instance, or two, lead).

``/healthz`` answers 200 on every instance with the role report (``role``, ``state``,
``instance``, ``host``, ``url``, ``leader``, ``leader_url``); ``/readyz`` is 200 only on the
leader, which is what a proxy's health check should ask (docs/operations.md).

Once it listens, the console gives the leadership its base URL (``web.public_url``, else
derived from ``web.address``), which the instance writes to the lease when it takes it.

A change that a deposed leader accepted just before it noticed is refused by the database
(fencing, :mod:`gateway.store.fencing`) and answered with the same 503, never applied."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.config import WebSettings
from gateway.leadership import CoreLeadership
from gateway.runtime import Gateway
from gateway.web.app import create_app
from gateway.web.metrics import WebMetrics, standby_metrics
from gateway.web.roles import LeaderInfo, RoleReport, console_url, not_leader_response
from gateway.web.service import AppServer

log = logging.getLogger(__name__)


def role_report(leadership: CoreLeadership) -> RoleReport:
    """This instance's role and the leader, from the leadership loop and the lease as it last
    read it (a standby reads it every ``renew_s``)."""
    if leadership.state == "leader" and leadership.leading():
        token = leadership.token if leadership.token is not None else 0
        url = leadership.console_url
        me = LeaderInfo(leadership.instance, leadership.host, token, url)
        return RoleReport("leader", "leader", leadership.instance, leadership.host, me, url)
    seen = leadership.seen
    leader = None
    if seen is not None and not seen.expired and seen.holder != leadership.instance:
        leader = LeaderInfo(seen.holder, seen.host, seen.token, console_url(seen.console_url))
    return RoleReport(
        "standby",
        leadership.state,
        leadership.instance,
        leadership.host,
        leader,
        leadership.console_url,
    )


class RoleDispatch:
    """The ASGI application of a core instance: ``/healthz`` with the role report, every
    other request to the leader's application while this instance leads, else 503."""

    def __init__(self, report: Callable[[], RoleReport]) -> None:
        self.report = report
        self.app: ASGIApp | None = None
        """The application of the running gateway while this instance leads."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return
        report = self.report()
        if scope["type"] == "http" and scope["path"] == "/healthz":
            health = JSONResponse(
                {"status": "ok", **report.as_json()}, headers={"Cache-Control": "no-store"}
            )
            await health(scope, receive, send)
            return
        app = self.app
        if app is not None and report.role == "leader":
            await app(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"] == "/metrics":
            await Response(standby_metrics(), media_type=CONTENT_TYPE_LATEST)(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})
            return
        await not_leader_response(Request(scope, receive), report)(scope, receive, send)


class LeaderConsole:
    """The gateway service that puts the leader's console behind :class:`CoreConsole` while
    the gateway runs (it listens on nothing itself)."""

    name = "web"

    def __init__(self, console: CoreConsole) -> None:
        self.console = console
        self._stopping = asyncio.Event()

    async def start(self, gateway: Gateway) -> None:
        self._stopping = asyncio.Event()
        self.console.dispatch.app = create_app(
            gateway,
            web=self.console.settings,
            metrics=self.console.metrics,
            stopping=self._stopping,
            role=self.console.report,
        )

    async def stop(self) -> None:
        self.console.dispatch.app = None
        self._stopping.set()


class CoreConsole:
    """The console of one core instance (see the module docstring). :meth:`follow` the
    instance's leadership, :meth:`start` before its loop runs, :meth:`stop` after; give
    :meth:`leader_console` to :func:`gateway.compose.build_core_role`'s ``extra_services``."""

    def __init__(self, settings: WebSettings, *, metrics: WebMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or WebMetrics()
        self.leadership: CoreLeadership | None = None
        self.dispatch = RoleDispatch(self.report)
        self.http = AppServer(settings)

    def follow(self, leadership: CoreLeadership) -> None:
        self.leadership = leadership

    def report(self) -> RoleReport:
        if self.leadership is None:
            raise RuntimeError("the console follows no leadership")
        return role_report(self.leadership)

    def leader_console(self, gateway: Gateway) -> LeaderConsole:
        """The service factory for the leader's gateway."""
        return LeaderConsole(self)

    @property
    def url(self) -> str:
        return self.http.url

    async def start(self) -> None:
        """Listen, and give the leadership this console's base URL for the lease (before its
        loop runs: the URL is written when the instance takes the lease)."""
        await self.http.start(self.dispatch)
        url = self.settings.console_url(self.http.port)
        if self.leadership is not None:
            self.leadership.console_url = url
        if url is None:
            log.warning(
                "web.public_url is not set and web.address %s listens on every interface: "
                "a standby's console cannot link to this one (set web.public_url)",
                self.settings.address,
            )

    async def stop(self) -> None:
        self.dispatch.app = None
        await self.http.stop()


__all__ = ["CoreConsole", "LeaderConsole", "RoleDispatch", "role_report"]

"""The ASGI application: console pages, the HTTP API, the operations endpoints.

:func:`create_app` builds it on a running :class:`~gateway.runtime.Gateway`; every read runs
on the core thread (:meth:`Gateway.call`), every change is a command submitted to the core
under the operator who asked for it, checked against that operator's role and audited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError

from gateway.auth import operators as operator_store
from gateway.auth.authorizer import Forbidden, check_action
from gateway.auth.operators import Operator
from gateway.commands.model import Command
from gateway.config import WebSettings
from gateway.core import Outcome, Submission
from gateway.runtime import Gateway
from gateway.store.fencing import is_fenced_out
from gateway.web import i18n
from gateway.web.keydesk import KeyDesk
from gateway.web.metrics import WebMetrics
from gateway.web.roles import RoleReport, not_leader_response
from gateway.web.security import COOKIE, CSRF_FIELD, CSRF_HEADER, Lockout, SessionStore, WebSession

HERE = Path(__file__).parent
SOURCE = "web"


class SignInNeeded(Exception):
    """No live console session."""


class CsrfRefused(Exception):
    """A state-changing console request without the session's CSRF token."""


@dataclass
class Signed:
    """The operator of a console request, with the session."""

    session: WebSession
    operator: Operator
    language: str

    @property
    def name(self) -> str:
        return self.operator.name


@dataclass
class WebContext:
    """Everything the routes share."""

    gateway: Gateway
    web: WebSettings
    sessions: SessionStore
    lockout: Lockout
    metrics: WebMetrics
    desk: KeyDesk | None
    stopping: asyncio.Event
    templates: jinja2.Environment
    secure_cookies: bool
    role: Callable[[], RoleReport] | None = None
    """This instance's role among the core instances (``lockgate run --role core``); None
    when it runs alone (``--role all``)."""

    @property
    def tz(self) -> ZoneInfo:
        return self.gateway.core.cfg.timezone

    async def operator(self, name: str) -> Operator | None:
        def get() -> Operator | None:
            with self.gateway.db.session(readonly=True) as s:
                return operator_store.get(s, name)

        return await self.gateway.call(get)

    async def signed(self, request: Request) -> Signed:
        """The signed-in operator of ``request``; :class:`SignInNeeded` when none.

        The session and its operator are read in one read-only transaction; a write follows
        only when the session has ended (its row is deleted) or its recorded last use is stale
        (:meth:`SessionStore.stale`)."""
        sid = request.cookies.get(COOKIE)
        if not sid:
            raise SignInNeeded()
        db, sessions = self.gateway.db, self.sessions

        def read() -> tuple[WebSession | None, Operator | None]:
            with db.session(readonly=True) as s:
                session = sessions.read(s, sid)
                if session is None:
                    return None, None
                return session, operator_store.get(s, session.operator)

        session, op = await self.gateway.call(read)
        if session is None:
            raise SignInNeeded()
        now = sessions.now()
        if op is None or not op.active or sessions.expired(session, now):
            gone = session.operator if op is None or not op.active else None

            def end() -> None:
                with db.session() as s:
                    if gone is not None:
                        sessions.drop_operator(s, gone)
                    else:
                        sessions.drop(s, sid)

            await self.gateway.call(end)
            raise SignInNeeded()
        if sessions.stale(session, now):

            def touch() -> None:
                with db.session() as s:
                    sessions.touch(s, session, now)

            await self.gateway.call(touch)
        language = i18n.choose(session.language, request.headers.get("accept-language"))
        return Signed(session, op, language)

    async def acting(self, request: Request, action: str | tuple[str, ...]) -> Signed:
        """:meth:`signed`, and the operator's role must allow ``action`` (one of them)."""
        who = await self.signed(request)
        require(who.operator, action)
        return who

    async def changing(self, request: Request, action: str | tuple[str, ...]) -> Signed:
        """:meth:`acting` for a state-changing request: the CSRF token must match."""
        who = await self.acting(request, action)
        token = request.headers.get(CSRF_HEADER)
        if token is None:
            form = await request.form()
            value = form.get(CSRF_FIELD)
            token = value if isinstance(value, str) else None
        if not who.session.csrf_ok(token):
            raise CsrfRefused()
        return who

    async def submit(self, who: str, command: Command) -> Outcome:
        """Apply ``command`` as operator ``who`` (role check and audit in the core)."""
        started = time.perf_counter()
        outcome = await self.gateway.call(
            self.gateway.core.submit, Submission(command, who, source=SOURCE)
        )
        self.metrics.observe(
            command.name, outcome_label(outcome), SOURCE, time.perf_counter() - started
        )
        return outcome

    def local(self, at: datetime | None) -> str:
        """An instant in the site's time zone, with the zone's label."""
        if at is None:
            return "–"
        return at.astimezone(self.tz).strftime("%Y-%m-%d %H:%M %Z")

    def render(
        self, request: Request, who: Signed | None, template: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        language = (
            who.language if who else i18n.choose(None, request.headers.get("accept-language"))
        )
        tr = i18n.translations(language)
        html = self.templates.get_template(template).render(
            _=tr.gettext,
            ngettext=tr.ngettext,
            who=who,
            csrf=who.session.csrf if who else "",
            lang=language,
            languages=i18n.LANGUAGES,
            local=self.local,
            tzname=str(self.tz),
            nav=navigation(who.operator) if who else [],
            path=request.url.path,
            **values,
        )
        return HTMLResponse(html, status_code=status)


def outcome_label(outcome: Outcome) -> str:
    if outcome.duplicate:
        return "duplicate"
    if outcome.ok:
        return "ok"
    return str((outcome.error or {}).get("code", "error"))


def require(op: Operator, action: str | tuple[str, ...]) -> None:
    """Raise :class:`Forbidden` unless ``op`` may do ``action`` (one of them)."""
    actions = (action,) if isinstance(action, str) else action
    last: Forbidden | None = None
    for a in actions:
        try:
            check_action(op, a)
            return
        except Forbidden as exc:
            last = exc
    assert last is not None
    raise last


def allows(op: Operator, action: str | tuple[str, ...]) -> bool:
    try:
        require(op, action)
    except Forbidden:
        return False
    return True


PAGES: tuple[tuple[str, str, str | tuple[str, ...]], ...] = (
    ("/", "Dashboard", "read_log"),
    (
        "/reception",
        "Reception",
        ("issue_credentials", "change_credentials", "approve_employee_cards"),
    ),
    ("/keydesk", "Key desk", "link_credentials"),
    ("/handout", "Key handout", ("issue_credentials", "link_credentials")),
    ("/credentials", "People and access", "read_log"),
    ("/review", "Access review", "read_log"),
    ("/exposure", "Exposure", "read_log"),
    ("/audit", "Audit log", "read_log"),
)
"""Every console page: path, title, the action (one of) its operator's role must allow."""


def navigation(op: Operator) -> list[tuple[str, str]]:
    return [(path, title) for path, title, action in PAGES if allows(op, action)]


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
        auto_reload=False,
    )
    return env


def create_app(
    gateway: Gateway,
    *,
    web: WebSettings | None = None,
    desk: KeyDesk | None = None,
    metrics: WebMetrics | None = None,
    stopping: asyncio.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] | None = None,
    role: Callable[[], RoleReport] | None = None,
) -> FastAPI:
    """The console and API application on the running ``gateway``; ``role`` reports this
    instance's role when it is one of several core instances (``/readyz`` includes it, and a
    change refused because another instance took over is answered with it). ``clock``
    (seconds) times the sign-in lock-out; ``now`` (default: the core's clock) is the wall
    clock console sessions expire on."""
    from gateway.web import api, console, openapi, ops

    settings = web or gateway.settings.web
    app = FastAPI(
        title="lockgate HTTP API",
        version="1",
        description="Every MQTT request of lockgate as an HTTP request, with the same "
        "payloads, responses and idempotency (the Idempotency-Key header is the request id), "
        "and read endpoints. Authenticate with an operator's API token: "
        "`Authorization: Bearer lgt_...`.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    ctx = WebContext(
        gateway=gateway,
        web=settings,
        sessions=SessionStore(
            idle_s=settings.session_idle_s,
            max_s=settings.session_max_s,
            now=now or gateway.core.clock,
        ),
        lockout=Lockout(after=settings.lockout_after, clock=clock),
        metrics=metrics or WebMetrics(),
        desk=desk,
        stopping=stopping or asyncio.Event(),
        templates=templates(),
        secure_cookies=bool(settings.tls_cert_file) or settings.secure_cookies,
        role=role,
    )
    app.state.ctx = ctx

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.url.path not in ("/healthz", "/readyz", "/metrics"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, exc: SignInNeeded) -> Response:
        if request.method == "GET" and "hx-request" not in request.headers:
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return JSONResponse({"error": "sign in first"}, status_code=401)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        return HTMLResponse(
            "refused: the form's CSRF token is missing or stale; reload the page and try again",
            status_code=403,
        )

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        who: Signed | None = None
        try:
            who = await ctx.signed(request)
        except SignInNeeded:
            who = None
        return ctx.render(request, who, "error.html", status=403, message=exc.message)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> Response:
        if not is_fenced_out(exc):
            raise exc
        # Another core instance took the lease: this one steps down; the change was not made.
        report = ctx.role() if ctx.role is not None else None
        return not_leader_response(request, report or _deposed(), fenced=True)

    @app.exception_handler(RuntimeError)
    async def _stopped(request: Request, exc: RuntimeError) -> Response:
        report = ctx.role() if ctx.role is not None else None
        if report is None or report.role == "leader":
            raise exc
        # A request under way while this core stepped down and its gateway stopped.
        return not_leader_response(request, report)

    openapi.install(app)
    ops.install(app, ctx)
    api.install(app, ctx)
    console.install(app, ctx)
    return app


def _deposed() -> RoleReport:
    return RoleReport(role="standby", state="stopping", instance="?", host="?", leader=None)


def context(app: FastAPI) -> WebContext:
    found: WebContext = app.state.ctx
    return found


__all__ = ["PAGES", "Signed", "WebContext", "context", "create_app", "require"]

"""Which core instance serves: the role report of ``lockgate run --role core`` and the answer
an instance gives when it cannot serve a request because it does not lead.

With several core instances on one database (:mod:`gateway.leadership`) only the leader runs
the gateway, so only its console signs in, reads and changes. Every other instance answers
every console page and API request with HTTP 503, a ``Retry-After`` header and a message that
names this instance as a standby and the instance that leads, with the base URL of the
leader's console (``leader_url``; all from the lease table), so that an operator knows where
to go and a proxy knows to try the leader. A browser gets a page with a link to the same page
on the leader.

A standby never redirects (no ``Location``): what it knows of the leader may be up to
``lease_s`` old (a leader killed a moment ago is still named until its lease expires), a
redirect would send browsers to a dead address where a 503 with ``Retry-After`` lets them
retry here, and when ``web.public_url`` names a proxy in front of the cores a redirect could
loop through it. See docs/operations.md."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

Role = Literal["leader", "standby"]

RETRY_AFTER_S = 1
"""What a refused request's ``Retry-After`` header asks for (seconds)."""


@dataclass(frozen=True)
class LeaderInfo:
    """The instance that holds the lease, as read from the lease table."""

    instance: str
    host: str
    token: int
    url: str | None = None
    """The base URL of the leader's console (None: unknown)."""

    def as_json(self) -> dict[str, Any]:
        return {"instance": self.instance, "host": self.host, "token": self.token, "url": self.url}

    def describe(self) -> str:
        return f"instance {self.instance} ({self.host}, token {self.token})"


@dataclass(frozen=True)
class RoleReport:
    """This instance's role, and who leads (None: nobody holds a live lease just now)."""

    role: Role
    state: str
    """The leadership loop's state: standby, starting, leader, stopping, stopped."""
    instance: str
    host: str
    leader: LeaderInfo | None
    url: str | None = None
    """The base URL of this instance's console (None: unknown)."""

    @property
    def leader_url(self) -> str | None:
        """The base URL of the leader's console, when the leader and its URL are known."""
        return self.leader.url if self.leader is not None else None

    def as_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "state": self.state,
            "instance": self.instance,
            "host": self.host,
            "url": self.url,
            "leader": self.leader.as_json() if self.leader is not None else None,
            "leader_url": self.leader_url,
        }

    def refusal(self, *, fenced: bool = False) -> str:
        """Why this instance does not serve a request, naming the leader."""
        me = f"instance {self.instance} ({self.host})"
        if fenced:
            why = (
                f"this lockgate core {me} is no longer the leader: the change was refused by "
                "the database (fenced out) and not applied"
            )
        else:
            why = f"this lockgate core {me} is a standby and serves no console or API requests"
        if self.leader is not None and self.leader.instance != self.instance:
            at = f" at {self.leader.url}" if self.leader.url else ""
            where = f"the leader is {self.leader.describe()}: use its console{at}"
        elif fenced:
            where = (
                "another instance has taken the lease: use its console (the /healthz of a "
                "core names the leader)"
            )
        else:
            where = "no instance leads at the moment: a standby takes over within seconds"
        return f"{why}; {where}, or retry in a moment"


def wants_json(request: Request) -> bool:
    """Whether ``request`` is for a program (the API, the probes, htmx fragments) rather than
    a browser page."""
    path = request.url.path
    if path.startswith("/api/") or path in ("/healthz", "/readyz", "/metrics"):
        return True
    accept = request.headers.get("accept", "")
    return "text/html" not in accept or "hx-request" in request.headers


def console_url(url: str | None) -> str | None:
    """``url`` if it is an http(s) URL with a host (as ``web.public_url`` is checked), else
    None: what the lease table holds is shown and linked to only then."""
    if url is None:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def leader_link(request: Request, report: RoleReport) -> str | None:
    """Where a browser finds what it asked for at the leader: the same page there for a
    ``GET`` or ``HEAD`` (path and query), the leader's console otherwise; None when the
    leader's URL is unknown (or not an http(s) URL, or this instance itself)."""
    base = console_url(report.leader_url)
    if base is None or report.leader is None or report.leader.instance == report.instance:
        return None
    base = base if base.endswith("/") else base + "/"
    if request.method not in ("GET", "HEAD"):
        return base
    path = quote(request.url.path.lstrip("/"), safe="/:@!$&'()*+,;=~")
    query = request.url.query
    return base + path + (f"?{query}" if query else "")


def not_leader_response(request: Request, report: RoleReport, *, fenced: bool = False) -> Response:
    """HTTP 503 for a request this instance cannot serve: JSON for programs (the API's error
    shape, code ``NOT_LEADER``, with the role report and ``leader_url``), a small page with a
    link to the leader's console for browsers. Never a redirect (see the module docstring)."""
    message = report.refusal(fenced=fenced)
    headers = {"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"}
    if wants_json(request):
        body = {
            "status": "not ready" if request.url.path == "/readyz" else "error",
            "error": {
                "code": "NOT_LEADER",
                "message": message,
                "field": None,
                "errors": [{"field": None, "message": message}],
            },
            **report.as_json(),
        }
        return JSONResponse(body, status_code=503, headers=headers)
    link = leader_link(request, report)
    go = (
        f'<p><a id="leader" href="{html.escape(link)}">Go to the leader\'s console: '
        f"{html.escape(link)}</a></p>"
        if link is not None
        else ""
    )
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>lockgate: standby</title>'
        "</head><body><h1>Not the leader</h1><p>"
        f"{html.escape(message)}</p>{go}</body></html>"
    )
    return HTMLResponse(page, status_code=503, headers=headers)


__all__ = [
    "LeaderInfo",
    "Role",
    "RoleReport",
    "console_url",
    "leader_link",
    "not_leader_response",
    "wants_json",
]

"""Which core instance serves: the role report of ``lockgate run --role core`` and the answer
an instance gives when it cannot serve a request because it does not lead.

With several core instances on one database (:mod:`gateway.leadership`) only the leader runs
the gateway, so only its console signs in, reads and changes. Every other instance answers
every console page and API request with HTTP 503, a ``Retry-After`` header and a message that
names this instance as a standby and the instance that leads (from the lease table), so that
an operator knows where to go and a proxy knows to try the leader."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Literal

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

    def as_json(self) -> dict[str, Any]:
        return {"instance": self.instance, "host": self.host, "token": self.token}

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

    def as_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "state": self.state,
            "instance": self.instance,
            "host": self.host,
            "leader": self.leader.as_json() if self.leader is not None else None,
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
            where = f"the leader is {self.leader.describe()}: use its console"
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


def not_leader_response(request: Request, report: RoleReport, *, fenced: bool = False) -> Response:
    """HTTP 503 for a request this instance cannot serve: JSON for programs (the API's error
    shape, code ``NOT_LEADER``, with the role report), a small page for browsers."""
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
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>lockgate: standby</title>'
        "</head><body><h1>Not the leader</h1><p>"
        f"{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(page, status_code=503, headers=headers)


__all__ = ["LeaderInfo", "Role", "RoleReport", "not_leader_response", "wants_json"]

"""``/healthz``, ``/readyz`` and ``/metrics``: for probes and Prometheus (no sign-in)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from gateway.bridge import MqttBridge
from gateway.core import Core
from gateway.web.metrics import read_gauges

if TYPE_CHECKING:
    from gateway.web.app import WebContext


def _store_ok(core: Core) -> bool:
    with core.db.session(readonly=True) as s:
        s.connection().execute(text("SELECT 1"))
    return True


def install(app: FastAPI, ctx: WebContext) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        """The process is alive and serving."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Ready for traffic: the store answers and, with MQTT on, the bridge is connected;
        among core instances, this one also leads (the role report is included)."""
        checks: dict[str, str] = {}
        try:
            await ctx.gateway.call(_store_ok, ctx.gateway.core)
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"failing: {type(exc).__name__}"
        bridge = next((s for s in ctx.gateway.services if isinstance(s, MqttBridge)), None)
        if bridge is None:
            checks["bridge"] = "off"
        else:
            checks["bridge"] = "ok" if bridge.connected.is_set() else "not connected"
        ready = all(v in ("ok", "off") for v in checks.values())
        body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": checks}
        if ctx.role is not None:
            report = ctx.role()
            body.update(report.as_json())
            ready = ready and report.role == "leader"
            body["status"] = "ready" if ready else "not ready"
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        gauges = await ctx.gateway.call(read_gauges, ctx.gateway.core)
        leading = ctx.role is None or ctx.role().role == "leader"
        return Response(ctx.metrics.render(gauges, leading=leading), media_type=CONTENT_TYPE_LATEST)


__all__ = ["install"]

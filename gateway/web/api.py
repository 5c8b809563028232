"""``/api/v1``: every MQTT request as ``POST /api/v1/requests/<name>``, and read endpoints.

A request is the MQTT request's payload, validated by the same models
(:mod:`gateway.bridge.envelope`) and applied by the same code as the bridge's
(:func:`gateway.bridge.inbound.apply_requests`): the same response body, the same error
codes, the same idempotency. The ``Idempotency-Key`` header is the request id (it fills
``request_id`` when the body has none, and must equal it when it has). The operator is the
one whose API token is the bearer token; ``client`` (which selects the operator over MQTT)
is refused. HTTP statuses follow the error code (:data:`STATUS`).
"""

from __future__ import annotations

import json
import time
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from gateway.auth.authorizer import Forbidden, check_action
from gateway.auth.operators import Operator
from gateway.auth.roles import READ_LOG
from gateway.bridge.envelope import RequestError, parse_request, request_model
from gateway.bridge.inbound import apply_requests
from gateway.bridge.payloads import ErrorBody, Response
from gateway.commands.model import COMMANDS
from gateway.core import Outcome
from gateway.domain.locks import LockRef, LockRefError
from gateway.web import views
from gateway.web.security import operator_by_token

if TYPE_CHECKING:
    from gateway.web.app import WebContext

SOURCE = "http"

STATUS: dict[str, int] = {
    "INVALID": 422,
    "INVALID_JSON": 400,
    "PAYLOAD_TOO_LARGE": 413,
    "UNKNOWN_REQUEST": 404,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "STALE": 409,
    "ILLEGAL_TRANSITION": 409,
    "EXPIRED": 410,
    "INTERNAL": 500,
}
"""HTTP status of a refusal by its error code (any other code: 422)."""

ERROR_STATUSES = (400, 401, 403, 404, 409, 410, 413, 422)


class ReadError(BaseModel):
    """A read endpoint's refusal."""

    model_config = ConfigDict(extra="forbid")
    error: ErrorBody


def _error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "field": field,
        "errors": [{"field": field, "message": message}],
    }
    return JSONResponse({"error": body}, status_code=status)


def _response(body: dict[str, Any]) -> JSONResponse:
    error = body.get("error")
    status = 200 if error is None else STATUS.get(error["code"], 422)
    return JSONResponse(body, status_code=status)


def _refused(request_id: str | None, code: str, message: str, field: str | None) -> JSONResponse:
    return _response(RequestError(request_id, code, message, field).response())


async def _bearer(ctx: WebContext, authorization: str | None) -> Operator | None:
    if not authorization or not authorization.startswith("Bearer "):
        return None
    token = authorization[len("Bearer ") :].strip()

    def find() -> Operator | None:
        with ctx.gateway.db.session(readonly=True) as s:
            return operator_by_token(s, token)

    return await ctx.gateway.call(find)


UNAUTHENTICATED = "a valid API token is needed: Authorization: Bearer lgt_..."


def install(app: FastAPI, ctx: WebContext) -> None:
    responses: dict[int | str, dict[str, Any]] = {
        status: {"model": Response, "description": "Refused: the error says why."}
        for status in ERROR_STATUSES
    }

    for command in COMMANDS:
        _request_route(app, ctx, command.name, request_model(command), responses)

    read_responses: dict[int | str, dict[str, Any]] = {
        s: {"model": ReadError, "description": "Refused."} for s in (401, 403, 404, 422)
    }

    async def reader(authorization: str | None) -> Operator | JSONResponse:
        op = await _bearer(ctx, authorization)
        if op is None:
            return _error(401, "UNAUTHENTICATED", UNAUTHENTICATED, "authorization")
        try:
            check_action(op, READ_LOG)
        except Forbidden as exc:
            return _error(403, "FORBIDDEN", exc.message, "operator")
        return op

    @app.get(
        "/api/v1/credentials/{number}",
        tags=["reads"],
        responses=read_responses,
        summary="A credential's state: what the rules derived and its lifecycle state.",
    )
    async def credential_state(
        number: str,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        op = await reader(authorization)
        if isinstance(op, JSONResponse):
            return op  # type: ignore[return-value]
        view = await ctx.gateway.call(views.credential, ctx.gateway.core, number)
        if view is None:
            return _error(404, "NOT_FOUND", f"credential {number} is not registered", "number")  # type: ignore[return-value]
        return {
            "number": view.number,
            "kind": view.kind,
            "state": view.state,
            "desired": view.stored,
        }

    @app.get(
        "/api/v1/credentials/{number}/explain",
        tags=["reads"],
        responses=read_responses,
        summary="Why the credential can or cannot open a lock: every condition checked.",
    )
    async def credential_explain(
        number: str,
        lock: Annotated[str | None, Query(description="cylinder:NUMBER or door:CTRL/DOOR")] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        op = await reader(authorization)
        if isinstance(op, JSONResponse):
            return op  # type: ignore[return-value]
        ref = None
        if lock:
            try:
                ref = LockRef.parse(lock)
            except LockRefError as exc:
                return _error(422, "INVALID", str(exc), "lock")  # type: ignore[return-value]
        view = await ctx.gateway.call(views.credential, ctx.gateway.core, number, ref)
        if view is None:
            return _error(404, "NOT_FOUND", f"credential {number} is not registered", "number")  # type: ignore[return-value]
        return view.explanation.as_json()

    @app.get(
        "/api/v1/devices",
        tags=["reads"],
        responses=read_responses,
        summary="Every station and controller: reachable or not, and why.",
    )
    async def device_status(
        authorization: Annotated[str | None, Header()] = None,
    ) -> list[dict[str, Any]]:
        op = await reader(authorization)
        if isinstance(op, JSONResponse):
            return op  # type: ignore[return-value]
        rows = await ctx.gateway.call(views.devices, ctx.gateway.core)
        return [r | {"changed_at": r["changed_at"].isoformat()} for r in rows]

    @app.get(
        "/api/v1/reports/expiring",
        tags=["reads"],
        responses=read_responses,
        summary="What lapses within the next days.",
    )
    async def report_expiring(
        days: Annotated[int, Query(ge=0, le=3650)] = 30,
        authorization: Annotated[str | None, Header()] = None,
    ) -> list[dict[str, Any]]:
        op = await reader(authorization)
        if isinstance(op, JSONResponse):
            return op  # type: ignore[return-value]
        items = await ctx.gateway.call(views.expiring_items, ctx.gateway.core, days)
        return [
            {
                "kind": i.kind,
                "subject": i.subject,
                "organisation": i.organisation,
                "lapses_at": i.lapses_at.isoformat(),
                "days_left": i.days_left,
                "detail": i.detail,
            }
            for i in items
        ]

    @app.get(
        "/api/v1/reports/exposure",
        tags=["reads"],
        responses=read_responses,
        summary="Locks that credentials can still open although they must not.",
    )
    async def report_exposure(
        authorization: Annotated[str | None, Header()] = None,
    ) -> list[dict[str, Any]]:
        op = await reader(authorization)
        if isinstance(op, JSONResponse):
            return op  # type: ignore[return-value]
        return await ctx.gateway.call(views.exposure_rows, ctx.gateway.core)

    @app.get(
        "/api/v1/reports/applications",
        tags=["reads"],
        responses=read_responses,
        summary="Access applications awaiting a decision, most urgent first.",
    )
    async def report_applications(
        authorization: Annotated[str | None, Header()] = None,
    ) -> list[dict[str, Any]]:
        op = await reader(authorization)
        if isinstance(op, JSONResponse):
            return op  # type: ignore[return-value]
        rules = ctx.gateway.settings.rules
        return await ctx.gateway.call(
            views.applications_due,
            ctx.gateway.core,
            rules.application_working_days,
            rules.expedited_working_days,
        )


def _request_route(
    app: FastAPI,
    ctx: WebContext,
    name: str,
    model: type[BaseModel],
    responses: dict[int | str, dict[str, Any]],
) -> None:
    async def endpoint(
        request: Request,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                description="The request id: fills request_id when the body has none, and "
                "must equal it when it has.",
            ),
        ] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        started = time.perf_counter()
        response = await _apply(ctx, name, await request.body(), idempotency_key, authorization)
        body = json.loads(bytes(response.body))
        outcome = "ok" if body.get("status") == "ok" else body["error"]["code"]
        if body.get("duplicate"):
            outcome = "duplicate"
        body.pop("duplicate", None)
        ctx.metrics.observe(name, outcome, SOURCE, time.perf_counter() - started)
        return JSONResponse(body, status_code=response.status_code)  # type: ignore[return-value]

    app.post(
        f"/api/v1/requests/{name}",
        name=f"request_{name}",
        tags=["requests"],
        summary=model.__doc__.splitlines()[0] if model.__doc__ else name,
        response_model=Response,
        responses=responses,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}
                    }
                },
            }
        },
    )(endpoint)


async def _apply(
    ctx: WebContext,
    name: str,
    payload: bytes,
    idempotency_key: str | None,
    authorization: str | None,
) -> JSONResponse:
    op = await _bearer(ctx, authorization)
    if op is None:
        return _refused(None, "UNAUTHENTICATED", UNAUTHENTICATED, "authorization")
    if idempotency_key is not None:
        try:
            obj = json.loads(payload)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            given = obj.get("request_id")
            if given is None:
                obj["request_id"] = idempotency_key
                payload = json.dumps(obj).encode()
            elif given != idempotency_key:
                return _refused(
                    given if isinstance(given, str) else None,
                    "INVALID",
                    "must equal the Idempotency-Key header",
                    "request_id",
                )
    parsed = parse_request(name, payload)
    if isinstance(parsed, RequestError):
        return _response(parsed.response())
    if parsed.client is not None:
        return _refused(
            parsed.request_id,
            "INVALID",
            "not used over HTTP: the operator of the API token acts",
            "client",
        )
    outcomes: list[Outcome] = await ctx.gateway.call(
        partial(apply_requests, source=SOURCE), ctx.gateway.core, [(parsed, op.name)]
    )
    outcome = outcomes[0]
    response = _response(outcome.response())
    if outcome.duplicate:
        body = json.loads(bytes(response.body)) | {"duplicate": True}
        return JSONResponse(body, status_code=response.status_code)
    return response


__all__ = ["STATUS", "install"]

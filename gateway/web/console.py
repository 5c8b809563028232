"""The console's pages (server-rendered, htmx for partial updates, Server-Sent Events for
live state). Each page checks its operator's role (403 otherwise); each change is a command
under the signed-in operator, so the core checks the role again and audits it."""

from __future__ import annotations

import asyncio
import csv
import io
import math
import tempfile
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from gateway.audit import log as audit_log
from gateway.auth.login import AuthenticationFailed, Secret, login
from gateway.commands import model as m
from gateway.commands.review import RecordAccessReview
from gateway.core import Outcome, Submission, error_of, field_errors
from gateway.documents.receipt import receipt_for, render_receipt
from gateway.domain.errors import DomainError
from gateway.domain.facts import DeliveryManifest, KeyOrder
from gateway.domain.locks import LockRef, LockRefError
from gateway.imports.manifest import (
    ImportRejected,
    parse_delivery_manifest,
    parse_returned_manifest,
    resolve_returned,
)
from gateway.runtime import cancel_and_wait
from gateway.web import i18n, views
from gateway.web.app import allows
from gateway.web.security import COOKIE, WebSession

if TYPE_CHECKING:
    from gateway.web.app import Signed, WebContext


CSV_LIMIT = 100_000
HANDOUT_ACTIONS = ("issue_credentials", "link_credentials")
RECEPTION_ACTIONS = ("issue_credentials", "change_credentials", "approve_employee_cards")


def _int(value: str | None, default: int = 1) -> int:
    try:
        return max(1, int(value or default))
    except ValueError:
        return default


def _csv(name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _form_errors(exc: ValidationError | DomainError) -> list[dict[str, Any]]:
    return field_errors(exc)


def _table_errors(errors: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Field errors as rows of a page's error table (no row number: a form, not a file)."""
    return [{"row": "", "column": e["field"] or "", "message": e["message"]} for e in errors]


def _refusal(outcome: Outcome, *, table: bool = True) -> tuple[list[dict[str, Any]], int]:
    """The errors of a refused command (as table rows unless ``table`` is False) and the
    status to answer with: 403 when the role may not, 422 otherwise."""
    assert outcome.error is not None
    errors = outcome.error["errors"]
    status = 403 if outcome.error["code"] == "FORBIDDEN" else 422
    return (_table_errors(errors) if table else errors), status


def _local_input(value: str, ctx: WebContext, field: str) -> datetime:
    """A ``datetime-local`` form value, in the site's time zone."""
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        raise DomainError("must be a date and time (YYYY-MM-DDTHH:MM)", field=field) from None
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=ctx.tz)


def install(app: FastAPI, ctx: WebContext) -> None:
    # ------------------------------------------------------------------ sign-in

    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str = "/") -> HTMLResponse:
        return ctx.render(request, None, "login.html", next=_safe_next(next), error=None)

    @app.post("/login", response_class=HTMLResponse)
    async def login_submit(request: Request) -> Response:
        form = await request.form()
        name = str(form.get("operator", "")).strip()
        password = str(form.get("password", ""))
        target = _safe_next(str(form.get("next", "/")))
        wait = ctx.lockout.wait_s(name)
        if wait > 0:
            return ctx.render(
                request,
                None,
                "login.html",
                status=429,
                next=target,
                error=f"too many failed sign-ins: try again in {math.ceil(wait)} seconds",
            )
        db = ctx.gateway.db
        clock = ctx.gateway.core.clock

        def attempt() -> WebSession | None:
            try:
                op = login(db, name, Secret("password", password), at=clock())
            except AuthenticationFailed:
                return None
            with db.session() as s:
                audit_log.append(
                    s,
                    at=clock(),
                    actor=op.name,
                    action="web.sign_in",
                    subjects=[f"operator {op.name}"],
                    data={},
                )
                return ctx.sessions.create(s, op.name)

        session = await ctx.gateway.call(attempt) if name and password else None
        if session is None:
            ctx.lockout.failed(name or "-")
            return ctx.render(
                request,
                None,
                "login.html",
                status=401,
                next=target,
                error="sign-in failed: check the operator name and the password",
            )
        ctx.lockout.succeeded(name)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            session.sid,
            httponly=True,
            samesite="strict",
            secure=ctx.secure_cookies,
            path="/",
        )
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        who = await ctx.changing(request, "read_log")
        clock = ctx.gateway.core.clock

        def record() -> None:
            with ctx.gateway.db.session() as s:
                ctx.sessions.drop(s, who.session.sid)
                audit_log.append(
                    s,
                    at=clock(),
                    actor=who.name,
                    action="web.sign_out",
                    subjects=[f"operator {who.name}"],
                    data={},
                )

        await ctx.gateway.call(record)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.post("/language")
    async def language(request: Request) -> Response:
        who = await ctx.changing(request, "read_log")
        form = await request.form()
        chosen = str(form.get("language", ""))

        def choose() -> None:
            with ctx.gateway.db.session() as s:
                ctx.sessions.set_language(
                    s, who.session, chosen if chosen in i18n.LANGUAGES else None
                )

        await ctx.gateway.call(choose)
        return RedirectResponse(_safe_next(str(form.get("next", "/"))), status_code=303)

    # ------------------------------------------------------------------ dashboard

    @app.get("/", response_class=HTMLResponse)
    async def dashboard(request: Request) -> Response:
        who = await ctx.acting(request, "read_log")
        rules = ctx.gateway.settings.rules
        data = await ctx.gateway.call(
            views.dashboard,
            ctx.gateway.core,
            rules.application_working_days,
            rules.expedited_working_days,
        )
        return ctx.render(request, who, "dashboard.html", d=data)

    @app.get("/live/devices")
    async def live_devices(request: Request) -> Response:
        who = await ctx.acting(request, "read_log")
        return StreamingResponse(_device_stream(ctx, request, who), media_type="text/event-stream")

    # ------------------------------------------------------------------ people and access

    @app.get("/credentials", response_class=HTMLResponse)
    async def credentials(
        request: Request, q: str = "", page: str = "1", format: str = ""
    ) -> Response:
        who = await ctx.acting(request, "read_log")
        core = ctx.gateway.core
        if format == "csv":
            found = await ctx.gateway.call(views.credentials, core, q, 1, CSV_LIMIT)
            return _csv(
                "credentials",
                ("number", "kind", "state", "holder", "active", "until", "reasons"),
                (
                    (
                        r["number"],
                        r["kind"],
                        r["state"],
                        r["holder"],
                        r["active"],
                        r["until"].isoformat() if r["until"] else "",
                        r["reasons"],
                    )
                    for r in found.rows
                ),
            )
        found = await ctx.gateway.call(views.credentials, core, q, _int(page))
        persons = await ctx.gateway.call(views.people, core, q)
        return ctx.render(request, who, "credentials.html", q=q, found=found, persons=persons)

    @app.get("/credentials/{number}", response_class=HTMLResponse)
    async def credential(request: Request, number: str, lock: str = "") -> Response:
        who = await ctx.acting(request, "read_log")
        ref: LockRef | None = None
        error = None
        if lock:
            try:
                ref = LockRef.parse(lock)
            except LockRefError as exc:
                error = f"lock: {exc}"
        view = await ctx.gateway.call(views.credential, ctx.gateway.core, number, ref)
        if view is None:
            return ctx.render(
                request,
                who,
                "error.html",
                status=404,
                message=f"credential {number} is not registered",
            )
        return ctx.render(request, who, "credential.html", v=view, lock=lock, lock_error=error)

    # ------------------------------------------------------------------ reception

    async def reception_page(
        request: Request, who: Signed, status: int = 200, **values: Any
    ) -> HTMLResponse:
        core = ctx.gateway.core
        cards = await ctx.gateway.call(views.visitor_cards, core)
        sponsors, spaces = await ctx.gateway.call(views.sponsors_and_spaces, core)
        op = who.operator
        values["may_issue"] = allows(op, "issue_credentials")
        values["may_change"] = allows(op, "change_credentials")
        values["may_approve"] = allows(op, "approve_employee_cards")
        values["awaiting_hr"] = (
            await ctx.gateway.call(views.awaiting_hr, core) if values["may_approve"] else []
        )
        values.setdefault("errors", [])
        values.setdefault("done", None)
        values.setdefault("form", {})
        return ctx.render(
            request,
            who,
            "reception.html",
            status=status,
            cards=cards,
            sponsors=sponsors,
            spaces=spaces,
            **values,
        )

    @app.get("/reception", response_class=HTMLResponse)
    async def reception(request: Request, format: str = "") -> Response:
        who = await ctx.acting(request, RECEPTION_ACTIONS)
        if format == "csv":
            cards = await ctx.gateway.call(views.visitor_cards, ctx.gateway.core)
            return _csv(
                "visitor-cards",
                ("number", "holder", "spaces", "valid_until", "seconds_left", "active"),
                (
                    (
                        c["number"],
                        c["holder"],
                        c["spaces"],
                        c["valid_until"].isoformat(),
                        c["left_s"],
                        c["active"],
                    )
                    for c in cards
                ),
            )
        return await reception_page(request, who)

    @app.post("/reception/issue", response_class=HTMLResponse)
    async def reception_issue(request: Request) -> Response:
        who = await ctx.changing(request, "issue_credentials")
        form = await request.form()
        values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        try:
            command = m.IssueVisitorCard.model_validate(
                {
                    "number": values.get("number", ""),
                    "holder_name": values.get("holder_name", ""),
                    "company": values.get("company", ""),
                    "mobile": values.get("mobile", ""),
                    "sponsor_employment_id": values.get("sponsor", ""),
                    "reason": values.get("reason", ""),
                    "space_ids": tuple(str(v) for v in form.getlist("spaces")),
                    "valid_until": _local_input(values.get("valid_until", ""), ctx, "valid_until"),
                    "confirmed_in_person": values.get("confirmed_in_person") == "on",
                    "return_duty_acknowledged": values.get("return_duty_acknowledged") == "on",
                }
            )
        except (ValidationError, DomainError) as exc:
            return await reception_page(
                request, who, status=422, errors=_form_errors(exc), form=values
            )
        outcome = await ctx.submit(who.name, command)
        return await _after(request, who, outcome, values, f"visitor card {command.number} issued")

    async def _after(
        request: Request, who: Signed, outcome: Outcome, values: dict[str, str], done: str
    ) -> Response:
        if not outcome.ok:
            errors, status = _refusal(outcome, table=False)
            return await reception_page(request, who, status=status, errors=errors, form=values)
        return await reception_page(request, who, done=done)

    @app.post("/reception/{number}/hr-approval", response_class=HTMLResponse)
    async def reception_hr_approval(request: Request, number: str) -> Response:
        who = await ctx.changing(request, "approve_employee_cards")
        try:
            command = m.ApproveEmployeeCard(credential_number=number)
        except ValidationError as exc:
            return await reception_page(request, who, status=422, errors=_form_errors(exc))
        outcome = await ctx.submit(who.name, command)
        if not outcome.ok:
            return await _after(request, who, outcome, {}, "")
        return await reception_page(request, who, done=f"employee card {number} approved by HR")

    @app.post("/reception/{number}/return", response_class=HTMLResponse)
    async def reception_return(request: Request, number: str) -> Response:
        who = await ctx.changing(request, "change_credentials")
        return await _return(request, who, number, lost=False)

    @app.post("/reception/{number}/lost", response_class=HTMLResponse)
    async def reception_lost(request: Request, number: str) -> Response:
        who = await ctx.changing(request, "change_credentials")
        return await _return(request, who, number, lost=True)

    async def _return(request: Request, who: Signed, number: str, *, lost: bool) -> Response:
        try:
            command = m.ReturnVisitorCard(number=number, lost=lost)
        except ValidationError as exc:
            return await reception_page(request, who, status=422, errors=_form_errors(exc))
        outcome = await ctx.submit(who.name, command)
        if not outcome.ok:
            return await _after(request, who, outcome, {}, "")
        card = await ctx.gateway.call(views.visitor_card, ctx.gateway.core, number)
        fee = outcome.data.get("fee_nok", 0)
        what = "reported lost" if lost else "returned"
        erased = bool(card and card.get("erased"))
        done = f"visitor card {number} {what}; holder's personal data erased: " + (
            "yes" if erased else "no"
        )
        if lost:
            done += f"; fee recorded: NOK {fee}"
        return await reception_page(request, who, done=done, returned=card)

    # ------------------------------------------------------------------ review, exposure

    @app.get("/review", response_class=HTMLResponse)
    async def review(request: Request, format: str = "") -> Response:
        who = await ctx.acting(request, "read_log")
        found = await ctx.gateway.call(views.review, ctx.gateway.core)
        if format == "csv":
            return _csv(
                "access-review",
                (
                    "group",
                    "number",
                    "kind",
                    "state",
                    "holder",
                    "organisation",
                    "sponsor",
                    "active",
                    "opens",
                    "valid_until",
                    "flags",
                ),
                (
                    (
                        g.name,
                        x.number,
                        x.kind,
                        x.state,
                        x.holder,
                        x.organisation,
                        x.sponsor,
                        x.active,
                        " ".join(o.space_id for o in x.opens),
                        x.valid_until.isoformat() if x.valid_until else "",
                        " ".join(x.flags),
                    )
                    for g in found.groups
                    for x in g.lines
                ),
            )
        return ctx.render(
            request,
            who,
            "review.html",
            review=found,
            errors=[],
            done=None,
            may_record=allows(who.operator, "record_access_review"),
        )

    @app.post("/review", response_class=HTMLResponse)
    async def review_record(request: Request) -> Response:
        who = await ctx.changing(request, "record_access_review")
        form = await request.form()
        remove = tuple(str(v) for v in form.getlist("remove"))
        note = str(form.get("note", ""))
        errors: list[dict[str, Any]] = []
        done = None
        try:
            command = RecordAccessReview(remove=remove, note=note)
        except ValidationError as exc:
            errors = _form_errors(exc)
        else:
            outcome = await ctx.submit(who.name, command)
            if outcome.ok:
                done = f"access review recorded; {len(remove)} removed and revoked"
            else:
                assert outcome.error is not None
                errors = outcome.error["errors"]
        found = await ctx.gateway.call(views.review, ctx.gateway.core)
        return ctx.render(
            request,
            who,
            "review.html",
            status=422 if errors else 200,
            review=found,
            errors=errors,
            done=done,
            may_record=True,
        )

    @app.get("/exposure", response_class=HTMLResponse)
    async def exposure(request: Request, format: str = "") -> Response:
        who = await ctx.acting(request, "read_log")
        rows = await ctx.gateway.call(views.exposure_rows, ctx.gateway.core)
        header = ("credential", "kind", "reasons", "lock", "status", "until", "detail")
        if format == "csv":
            return _csv(
                "exposure",
                header,
                (
                    (
                        r["credential"],
                        r["kind"],
                        " ".join(r["reasons"]),
                        r["lock"],
                        r["status"],
                        r["until"] or "",
                        r["detail"],
                    )
                    for r in rows
                ),
            )
        return ctx.render(request, who, "exposure.html", rows=rows)

    # ------------------------------------------------------------------ audit log

    @app.get("/audit", response_class=HTMLResponse)
    async def audit(
        request: Request,
        actor: str = "",
        action: str = "",
        subject: str = "",
        since: str = "",
        until: str = "",
        page: str = "1",
        format: str = "",
    ) -> Response:
        who = await ctx.acting(request, "read_log")
        try:
            start = _local_input(since, ctx, "since") if since else None
            end = _local_input(until, ctx, "until") if until else None
        except DomainError as exc:
            return ctx.render(
                request, who, "error.html", status=422, message=f"{exc.field}: {exc.message}"
            )
        args = dict(
            actor=actor or None,
            action=action or None,
            subject=subject or None,
            since=start,
            until=end,
        )
        core = ctx.gateway.core

        def read(page_no: int, size: int) -> views.Page:
            return views.audit(core, page=page_no, size=size, **args)  # type: ignore[arg-type]

        if format == "csv":
            found = await ctx.gateway.call(read, 1, CSV_LIMIT)
            return _csv(
                "audit",
                ("seq", "at", "actor", "action", "subject"),
                (
                    (r["seq"], r["at"].isoformat(), r["actor"], r["action"], r["subject"])
                    for r in found.rows
                ),
            )
        found = await ctx.gateway.call(read, _int(page), views.PAGE_SIZE)
        filters = {
            "actor": actor,
            "action": action,
            "subject": subject,
            "since": since,
            "until": until,
        }
        return ctx.render(
            request, who, "audit.html", found=found, filters=filters, verification=None
        )

    @app.post("/audit/verify", response_class=HTMLResponse)
    async def audit_verify(request: Request) -> Response:
        who = await ctx.changing(request, "read_log")
        result = await ctx.gateway.call(views.verify_audit, ctx.gateway.core)
        return ctx.render(request, who, "_verify.html", verification=result)

    # ------------------------------------------------------------------ key desk

    @app.get("/keydesk", response_class=HTMLResponse)
    async def keydesk(request: Request, station: str = "") -> Response:
        who = await ctx.acting(request, "link_credentials")
        stations = sorted(ctx.desk.stations) if ctx.desk else []
        chosen = station if station in stations else (stations[0] if stations else "")
        return ctx.render(
            request, who, "keydesk.html", stations=stations, station=chosen, panel=_panel(chosen)
        )

    def _panel(station: str) -> dict[str, Any]:
        state = ctx.desk.stations.get(station) if ctx.desk else None
        return {"station": station, "state": state}

    @app.get("/keydesk/{station}/panel", response_class=HTMLResponse)
    async def keydesk_panel(request: Request, station: str) -> Response:
        who = await ctx.acting(request, "link_credentials")
        panel = _panel(station)
        state = panel["state"]
        explanation = None
        holder = None
        visit = state.visit if state else None
        if visit is not None:
            view = await ctx.gateway.call(views.credential, ctx.gateway.core, visit.serial)
            if view is not None:
                explanation, holder = view.explanation, view.holder
        return ctx.render(
            request, who, "_desk.html", panel=panel, explanation=explanation, holder=holder
        )

    @app.post("/keydesk/{station}/answer", response_class=HTMLResponse)
    async def keydesk_answer(request: Request, station: str) -> Response:
        who = await ctx.changing(request, "link_credentials")
        form = await request.form()
        serial = str(form.get("serial", ""))
        confirm = form.get("answer") == "confirm"
        ok = ctx.desk is not None and ctx.desk.answer(station, serial, confirm)
        if ok:
            clock = ctx.gateway.core.clock

            def record() -> None:
                with ctx.gateway.db.session() as s:
                    audit_log.append(
                        s,
                        at=clock(),
                        actor=who.name,
                        action="web.key_desk",
                        subjects=[f"credential {serial}", f"device {station}"],
                        data={"answer": "confirm" if confirm else "decline"},
                    )

            await ctx.gateway.call(record)
        await asyncio.sleep(0)
        return await keydesk_panel(request, station)

    # ------------------------------------------------------------------ key handout

    async def handout_page(
        request: Request,
        who: Signed,
        *,
        status: int = 200,
        errors: list[dict[str, Any]] | None = None,
        done: str | None = None,
        order: str = "",
    ) -> HTMLResponse:
        unsigned = await ctx.gateway.call(views.unsigned_receipts, ctx.gateway.core)
        return ctx.render(
            request,
            who,
            "handout.html",
            status=status,
            errors=errors or [],
            done=done,
            order=order,
            unsigned=unsigned,
            may_issue=allows(who.operator, "issue_credentials"),
            may_link=allows(who.operator, "link_credentials"),
        )

    @app.get("/handout", response_class=HTMLResponse)
    async def handout(request: Request) -> Response:
        who = await ctx.acting(request, HANDOUT_ACTIONS)
        return await handout_page(request, who)

    @app.post("/handout/order", response_class=HTMLResponse)
    async def handout_order(request: Request) -> Response:
        who = await ctx.changing(request, "issue_credentials")
        form = await request.form()
        values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        try:
            command = m.PlaceKeyOrder(
                order=KeyOrder.model_validate(
                    {
                        "id": values.get("order_id", ""),
                        "org_number": values.get("org_number", ""),
                        "quantity": values.get("quantity", ""),
                        "delivery_address": values.get("delivery_address", ""),
                        "ordered_at": ctx.gateway.core.clock(),
                    }
                )
            )
        except ValidationError as exc:
            errors = _table_errors(_form_errors(exc))
            return await handout_page(request, who, status=422, errors=errors)
        outcome = await ctx.submit(who.name, command)
        if not outcome.ok:
            errors, status = _refusal(outcome)
            return await handout_page(request, who, status=status, errors=errors)
        return await handout_page(
            request,
            who,
            done=f"key order {command.order.id} placed: {command.order.quantity} keys",
            order=command.order.id,
        )

    @app.post("/handout/returned", response_class=HTMLResponse)
    async def handout_returned(request: Request) -> Response:
        who = await ctx.changing(request, "link_credentials")
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await handout_page(
                request,
                who,
                status=422,
                errors=[{"row": "", "column": "file", "message": "choose a CSV or XLSX file"}],
            )
        suffix = Path(upload.filename or "").suffix.lower()
        data = await upload.read()
        core = ctx.gateway.core
        operator = who.name

        def link() -> list[str]:
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / f"returned{suffix}"
                path.write_bytes(data)
                rows = parse_returned_manifest(path)
            facts = core.engine.facts
            links = resolve_returned(
                rows,
                credential=facts.credentials.get,
                employment_by_id06=lambda card: facts.employments.get(
                    facts.employment_by_card.get(card, "")
                ),
                person=facts.persons.get,
                keys_of_employment=lambda e: [
                    facts.credentials[n] for n in facts.credentials_by_employment.get(e, ())
                ],
            )
            core.submit_many(
                [
                    Submission(
                        m.HandOut(
                            credential_number=x.credential_number, employment_id=x.employment_id
                        ),
                        operator,
                        source="web",
                    )
                    for x in links
                ],
                atomic=True,
            )
            return [x.credential_number for x in links]

        try:
            linked = await ctx.gateway.call(link)
        except ImportRejected as exc:
            return await handout_page(
                request,
                who,
                status=422,
                errors=[
                    {"row": e.row, "column": e.column, "message": e.message} for e in exc.errors
                ],
            )
        except DomainError as exc:
            status = 403 if exc.code == "FORBIDDEN" else 422
            return await handout_page(
                request,
                who,
                status=status,
                errors=[{"row": "", "column": exc.field or "file", "message": exc.message}],
            )
        return await handout_page(
            request,
            who,
            done=f"{len(linked)} keys handed out: {', '.join(linked)}; print their receipts "
            "below and record each signature",
        )

    @app.get("/handout/receipt/{number}.pdf")
    async def handout_receipt(request: Request, number: str) -> Response:
        who = await ctx.acting(request, HANDOUT_ACTIONS)
        core = ctx.gateway.core
        zone = ctx.gateway.settings.site.timezone

        def render() -> bytes:
            return render_receipt(receipt_for(core.engine.facts, number, zone))

        try:
            pdf = await ctx.gateway.call(render)
        except DomainError as exc:
            return ctx.render(request, who, "error.html", status=404, message=exc.message)
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="receipt-{number}.pdf"'},
        )

    @app.post("/handout/{number}/signed", response_class=HTMLResponse)
    async def handout_signed(request: Request, number: str) -> Response:
        who = await ctx.changing(request, "link_credentials")
        try:
            command = m.SignReceipt(credential_number=number)
        except ValidationError as exc:
            errors = _table_errors(_form_errors(exc))
            return await handout_page(request, who, status=422, errors=errors)
        outcome = await ctx.submit(who.name, command)
        if not outcome.ok:
            errors, status = _refusal(outcome)
            return await handout_page(request, who, status=status, errors=errors)
        return await handout_page(request, who, done=f"receipt of {number} signed: in service")

    @app.post("/handout/delivery", response_class=HTMLResponse)
    async def handout_delivery(request: Request) -> Response:
        who = await ctx.changing(request, "issue_credentials")
        form = await request.form()
        order = str(form.get("order", "")).strip()
        upload = form.get("file")
        errors: list[dict[str, Any]] = []
        if not isinstance(upload, UploadFile) or not upload.filename:
            errors.append({"row": "", "column": "file", "message": "choose a CSV or XLSX file"})
        if not order:
            errors.append({"row": "", "column": "order", "message": "is required"})
        if errors:
            return await handout_page(request, who, status=422, errors=errors, order=order)
        assert isinstance(upload, UploadFile)
        suffix = Path(upload.filename or "").suffix.lower()
        data = await upload.read()
        try:
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / f"manifest{suffix}"
                path.write_bytes(data)
                serials = parse_delivery_manifest(path)
            command = m.RegisterDelivery(
                manifest=DeliveryManifest(
                    order_id=order,
                    delivered_at=ctx.gateway.core.clock(),
                    key_serials=tuple(serials),
                )
            )
        except ImportRejected as exc:
            errors = [{"row": e.row, "column": e.column, "message": e.message} for e in exc.errors]
        except (DomainError, ValidationError) as exc:
            _code, message, field = error_of(exc)
            errors = [{"row": "", "column": field or "file", "message": message}]
        if errors:
            return await handout_page(request, who, status=422, errors=errors, order=order)
        outcome = await ctx.submit(who.name, command)
        if not outcome.ok:
            errors, status = _refusal(outcome)
            return await handout_page(request, who, status=status, errors=errors, order=order)
        return await handout_page(
            request, who, done=f"{len(serials)} keys registered as delivered against {order}"
        )


async def _device_stream(ctx: WebContext, request: Request, who: Signed) -> AsyncIterator[str]:
    """Server-sent events: the device table, again whenever anything commits (at most every
    half second) and at least every 5 seconds."""
    wake = asyncio.Event()

    def observer(_: object) -> None:
        wake.set()

    ctx.gateway.observe(observer)
    try:
        last = ""
        while not ctx.stopping.is_set():
            rows = await ctx.gateway.call(views.devices, ctx.gateway.core)
            html = ctx.templates.get_template("_devices.html").render(
                devices=rows, _=i18n.translations(who.language).gettext, local=ctx.local
            )
            if html != last:
                last = html
                data = "\n".join(f"data: {line}" for line in html.splitlines())
                yield f"event: devices\n{data}\n\n"
            wake.clear()
            waiter = asyncio.create_task(wake.wait(), name="lockgate-web-sse-wake")
            stopper = asyncio.create_task(ctx.stopping.wait(), name="lockgate-web-sse-stop")
            try:
                await asyncio.wait(
                    {waiter, stopper}, timeout=5.0, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for task in (waiter, stopper):
                    await cancel_and_wait(task)
            await asyncio.sleep(0.5)
    finally:
        ctx.gateway.unobserve(observer)


__all__ = ["install"]

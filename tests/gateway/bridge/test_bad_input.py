"""Bad input over MQTT: every malformed request gets exactly one error response naming the
problem, changes nothing in the store and leaves the gateway serving."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.bridge.envelope import MAX_PAYLOAD_BYTES, request_model
from gateway.bridge.payloads import Response
from gateway.commands import model as m
from gateway.commands.model import COMMANDS_BY_NAME
from gateway.core import MAX_ERRORS
from gateway.demo.broker import PrivateMosquitto
from gateway.domain.facts import Organisation
from tests import sample
from tests.gateway.bridge.harness import (
    Central,
    LoopThread,
    Running,
    body,
    central,
    running_gateway,
    settings_for,
    store_snapshot,
)

BODIES = [(c.name, body(c, "bad-1")) for c in sample.sample_commands(date(2026, 11, 23))]
CODES = {"INVALID", "INVALID_JSON", "PAYLOAD_TOO_LARGE", "UNKNOWN_REQUEST"}
ANY_FIELD = "<any>"


@st.composite
def bad_requests(draw: st.DrawFn) -> tuple[str, bytes, str | None, str | None]:
    """(request name, payload, expected error field or None, expected request_id)."""
    name, valid = draw(st.sampled_from(BODIES))
    kind = draw(
        st.sampled_from(
            ["bytes", "text", "json", "missing", "extra", "wrong_type", "huge", "no_id", "name"]
        )
    )
    if kind == "bytes":
        raw = draw(st.binary(max_size=600))
        return name, raw, ANY_FIELD, None
    if kind == "text":
        return name, draw(st.text(max_size=300)).encode(), ANY_FIELD, None
    if kind == "json":
        value = draw(
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                lambda inner: (
                    st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4)
                ),
                max_leaves=12,
            ).filter(lambda v: not isinstance(v, dict) or "request_id" not in v)
        )
        return name, json.dumps(value).encode(), ANY_FIELD, None
    model = request_model(COMMANDS_BY_NAME[name])
    if kind == "missing":
        required = [k for k, f in model.model_fields.items() if f.is_required()]
        key = draw(st.sampled_from(required))
        broken = {k: v for k, v in valid.items() if k != key}
        return name, json.dumps(broken).encode(), key, (None if key == "request_id" else "bad-1")
    if kind == "extra":
        key = draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in model.model_fields))
        extra = {**valid, key: draw(st.integers() | st.text(max_size=10) | st.none())}
        return name, json.dumps(extra).encode(), key, "bad-1"
    if kind == "wrong_type":
        key = draw(st.sampled_from([k for k in valid if k != "request_id"]))
        wrong = {**valid, key: {"unexpected": [True]}}
        return name, json.dumps(wrong).encode(), key, "bad-1"
    if kind == "huge":
        size = draw(st.integers(MAX_PAYLOAD_BYTES + 1, MAX_PAYLOAD_BYTES + 4096))
        padded = json.dumps({**valid, "padding": ""}).encode()
        padded = padded[:-2] + b'"' + b"x" * (size - len(padded)) + b'"}'
        return name, padded, None, None
    if kind == "no_id":
        return (
            name,
            json.dumps({k: v for k, v in valid.items() if k != "request_id"}).encode(),
            ("request_id"),
            None,
        )
    unknown = draw(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=20).filter(
            lambda n: n not in COMMANDS_BY_NAME
        )
    )
    return unknown, json.dumps(valid).encode(), "topic", "bad-1"


@contextlib.asynccontextmanager
async def gateway_and_central(
    broker: PrivateMosquitto, db_url: str
) -> AsyncIterator[tuple[Running, Central]]:
    async with running_gateway(settings_for(db_url, broker)) as gw, central(broker, gw.base) as c:
        yield gw, c


def test_bad_requests_get_one_error_each_and_change_nothing(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    stack = contextlib.AsyncExitStack()
    with LoopThread() as loop:
        gw, c = loop.run(
            stack.enter_async_context(gateway_and_central(broker, f"sqlite:///{tmp_path}/g.db"))
        )
        try:
            org = m.PutOrganisation(organisation=Organisation(org_number=sample.MAIN, name="A"))
            assert loop.run(c.request(org, "before"))["status"] == "ok"
            before = store_snapshot(gw.gateway)
            sent: list[bytes] = []

            @settings(max_examples=80, deadline=None)
            @given(bad_requests())
            def check(case: tuple[str, bytes, str | None, str | None]) -> None:
                name, payload, field, request_id = case
                correlation = f"corr-{len(sent)}".encode()
                sent.append(correlation)
                loop.run(c.publish(name, payload, correlation=correlation))
                response = loop.run(c.correlated(correlation))
                assert response["status"] == "error", response
                assert response["data"] == {}
                error = response["error"]
                assert error["code"] in CODES, error
                assert error["message"]
                Response.model_validate(response)
                assert error["errors"], error
                assert error["errors"][0]["field"] == error["field"]
                assert error["message"].startswith(error["errors"][0]["message"])
                if field == ANY_FIELD:
                    pass
                elif field is None:
                    assert error["field"] is None
                else:
                    # The key itself, or a path inside it (a nested model refused as a whole).
                    assert error["field"] is not None
                    assert error["field"] == field or error["field"].startswith(f"{field}."), (
                        error,
                        field,
                    )
                assert response["request_id"] == request_id
                assert store_snapshot(gw.gateway) == before

            check()
            assert len(sent) >= 50, "hypothesis ran the examples"
            # Still serving, and no request got a second response.
            assert loop.run(c.request(org, "after"))["status"] == "ok"
            loop.run(asyncio.sleep(0.3))
            assert all(len(c.by_correlation[k]) == 1 for k in sent)
            assert gw.bridge.connections == 1
        finally:
            loop.run(stack.aclose())


async def test_every_error_of_a_request_is_listed_and_a_flat_payload_is_told_to_nest(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    """A master-data request sent flat got only `Field required (and 2 more)`."""
    async with (
        running_gateway(settings_for(f"sqlite:///{tmp_path}/g.db", broker)) as gw,
        central(broker, gw.base) as c,
    ):
        await c.publish(
            "organisation",
            {"request_id": "flat-1", "org_number": sample.MAIN, "name": "Banbyggarna AB"},
        )
        response = await c.response("flat-1")
        Response.model_validate(response)
        error = response["error"]
        assert error["code"] == "INVALID"
        assert error["field"] == "organisation"
        assert "(and 2 more)" in error["message"]
        assert (
            "the fields name, org_number belong inside the object 'organisation'"
            in (error["message"])
        )
        assert [(e["field"], e["message"].split(":")[0]) for e in error["errors"]] == [
            ("organisation", "Field required"),
            ("org_number", "Extra inputs are not permitted"),
            ("name", "Extra inputs are not permitted"),
        ]
        # Many errors: every one listed, up to the bound.
        app = {
            "request_id": "many-1",
            "application": {
                "assignment_id": "",
                "revision": -1,
                "status": "maybe",
                "expedited": "x",
                "submitted_at": "yesterday",
                "entries": [{"employment_id": ""}] * 30,
            },
        }
        await c.publish("application", app)
        many = (await c.response("many-1"))["error"]
        assert len(many["errors"]) == MAX_ERRORS
        assert len({e["field"] for e in many["errors"]}) == MAX_ERRORS
        assert "application.assignment_id" in {e["field"] for e in many["errors"]}


async def test_unreadable_and_unknown_requests_are_answered_on_the_response_tree(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    """Without MQTT v5 properties the error still arrives, with request_id when readable."""
    async with (
        running_gateway(settings_for(f"sqlite:///{tmp_path}/g.db", broker)) as gw,
        central(broker, gw.base) as c,
    ):
        await c.publish("no_such_thing", {"request_id": "u-1"})
        response = await c.response("u-1")
        assert response["error"]["code"] == "UNKNOWN_REQUEST"
        assert c.on("v1/response/no_such_thing")
        await c.publish("organisation", b"\x00\xff not json")
        await c.wait_for(lambda: bool(c.on("v1/response/organisation")))
        payload, _ = c.on("v1/response/organisation")[0]
        data: dict[str, Any] = json.loads(payload)
        assert data["request_id"] is None
        assert data["error"]["code"] == "INVALID_JSON"
        assert "UTF-8" in data["error"]["message"]


async def test_a_retained_request_is_ignored(broker: PrivateMosquitto, tmp_path: Path) -> None:
    """Requests must not be retained: one found in the broker's retained store when the
    gateway subscribes is a replay and is not applied again."""
    settings = settings_for(f"sqlite:///{tmp_path}/g.db", broker)
    org = m.PutOrganisation(organisation=Organisation(org_number=sample.MAIN, name="A"))
    async with central(broker, settings.mqtt.base_topic) as c:
        await c.publish("organisation", body(org, "ret-1"), retain=True)
        try:
            async with running_gateway(settings) as gw:
                await asyncio.sleep(0.5)
                assert store_snapshot(gw.gateway)["organisation"] == 0
                assert "ret-1" not in c.responses
        finally:
            await c.client.publish(
                f"{settings.mqtt.base_topic}/v1/request/organisation", b"", qos=1, retain=True
            )

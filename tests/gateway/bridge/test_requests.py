"""Requests over MQTT against the private broker: every request kind, idempotency, stale and
expired requests, MQTT v5 request/response, operators, and revocations first."""

from __future__ import annotations

import asyncio
import json
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.audit import log as audit_log
from gateway.bridge import MqttBridge
from gateway.bridge.payloads import Response
from gateway.commands import model as m
from gateway.commands.model import COMMANDS_BY_NAME, Command
from gateway.core import Core, Submission
from gateway.demo.broker import PrivateMosquitto
from gateway.domain.facts import (
    AccessApplication,
    ApplicationStatus,
    Competence,
    Organisation,
)
from gateway.store import desired, inbox, journal, migrate, tables
from gateway.store.database import Database
from tests import sample
from tests.gateway.bridge.harness import (
    FACT_TABLES,
    body,
    central,
    count,
    poll_until,
    running_gateway,
    settings_for,
    snapshot,
    store_snapshot,
)

TODAY = date.today()


def follow_ups() -> list[Command]:
    """The request kinds the sample story does not use, continuing it."""
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    return [
        m.UnblockId06(card_number="ID06DN0001"),
        m.RemoveCompetence(person_id="p-bjorn", code="ELSAK"),
        m.ReportCredential(credential_number=sample.KEY_CECILIA, outcome="lost"),
        m.ReplaceKey(old_number=sample.KEY_ANNA, new_number=sample.KEY_IN_STOCK),
        m.ChangeVisitorCard(number=sample.VISITOR_CARD, valid_until=later),
        m.ReturnVisitorCard(number=sample.VISITOR_CARD),
    ]


def story() -> list[Command]:
    return [*sample.sample_commands(TODAY), *follow_ups()]


Reference = tuple[list[dict[str, Any]], dict[str, tuple[str, bool]], dict[str, int]]


def reference(commands: list[Command]) -> Reference:
    """Responses, derived states and fact counts of the same commands applied to a core."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'ref.db'}"
        migrate.upgrade(url)
        db = Database(url)
        try:
            core = Core(db)
            core.load()
            outcomes = [core.submit(Submission(c, "reference")) for c in commands]
            with db.session(readonly=True) as s:
                states = {
                    st.number: (st.revision, st.active) for st in desired.all_credential_states(s)
                }
            facts = snapshot(db, FACT_TABLES)
        finally:
            db.dispose()
    return [o.response() for o in outcomes], states, facts


async def test_every_request_kind_gets_its_response_and_changes_the_store(
    db_url: str, broker: PrivateMosquitto
) -> None:
    commands = story()
    assert {c.name for c in commands} == set(COMMANDS_BY_NAME), "every request kind is used"
    expected, expected_states, expected_facts = reference(commands)
    async with running_gateway(settings_for(db_url, broker)) as gw, central(broker, gw.base) as c:
        responses = []
        for i, command in enumerate(commands):  # one at a time: later requests depend on earlier
            responses.append(await c.request(command, f"story-{i}"))
        for i, (got, want) in enumerate(zip(responses, expected, strict=True)):
            Response.model_validate(got)
            assert got["status"] == "ok", (commands[i].name, got)
            assert got["request_id"] == f"story-{i}"
            assert got["data"] == want["data"], commands[i].name
            assert got["error"] is None
        with gw.gateway.db.session(readonly=True) as s:
            states = {
                st.number: (st.revision, st.active) for st in desired.all_credential_states(s)
            }
            for i, command in enumerate(commands):
                entry = inbox.lookup(s, f"story-{i}")
                assert entry is not None
                assert entry.kind == command.name
                assert entry.response == responses[i]
        assert states == expected_states
        assert snapshot(gw.gateway.db, FACT_TABLES) == expected_facts
        assert count(gw.gateway, tables.organisation) == 3


async def test_a_repeated_request_id_returns_the_stored_response_and_changes_nothing(
    db_url: str, broker: PrivateMosquitto
) -> None:
    org = Organisation(org_number=sample.MAIN, name="Banbyggarna AB")
    renamed = Organisation(org_number=sample.MAIN, name="Another name")
    async with running_gateway(settings_for(db_url, broker)) as gw, central(broker, gw.base) as c:
        first = await c.request(m.PutOrganisation(organisation=org), "same-id")
        assert first["status"] == "ok"
        with gw.gateway.db.session(readonly=True) as s:
            head = journal.head(s)
        before = store_snapshot(gw.gateway)
        # The same request again (spelled otherwise) is answered from the inbox.
        replay = body(m.PutOrganisation(organisation=org), "same-id")
        replay["organisation"]["name"] = " Banbyggarna AB "
        await c.publish("organisation", replay)
        await c.wait_for(lambda: len(c.responses["same-id"]) == 2)
        assert c.responses["same-id"][1] == first
        # The same id with another body is another request: refused, nothing changes.
        await c.publish("organisation", body(m.PutOrganisation(organisation=renamed), "same-id"))
        await c.wait_for(lambda: len(c.responses["same-id"]) == 3)
        refused = c.responses["same-id"][2]
        assert refused["status"] == "error"
        assert refused["error"]["code"] == "CONFLICT"
        assert refused["error"]["field"] == "request_id"
        assert store_snapshot(gw.gateway) == before
        with gw.gateway.db.session(readonly=True) as s:
            assert journal.head(s) == head
            stored = s.execute(select(tables.organisation.c.name)).scalar_one()
            assert inbox.lookup(s, "same-id").response == first  # type: ignore[union-attr]
        assert stored == "Banbyggarna AB"


async def test_a_request_id_reused_by_another_request_is_refused_and_audited(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    """An id06_block reusing the id of an earlier person request was answered ok and lost."""
    async with (
        running_gateway(settings_for(f"sqlite:///{tmp_path}/g.db", broker)) as gw,
        central(broker, gw.base) as c,
    ):
        for i, command in enumerate(sample.sample_commands(TODAY)):
            assert (await c.request(command, f"s-{i}"))["status"] == "ok"
        person = next(
            i for i, x in enumerate(sample.sample_commands(TODAY)) if isinstance(x, m.PutPerson)
        )
        before = store_snapshot(gw.gateway)
        rid = f"s-{person}"
        await c.publish("id06_block", body(m.BlockId06(card_number="ID06AN0001"), rid))
        await c.wait_for(lambda: len(c.responses[rid]) == 2)
        response = c.responses[rid][1]
        assert response["status"] == "error", response
        assert response["error"]["code"] == "CONFLICT"
        assert response["error"]["field"] == "request_id"
        assert "person request" in response["error"]["message"]
        assert store_snapshot(gw.gateway) == before
        assert gw.gateway.core.engine.states[sample.KEY_ANNA].active
        with gw.gateway.db.session(readonly=True) as s:
            entries = audit_log.entries(s, action="id06_block")
        refused = [e for e in entries if e.data.get("request_id") == f"s-{person}"]
        assert len(refused) == 1
        assert refused[0].data["status"] == "refused"
        assert refused[0].data["error"]["code"] == "CONFLICT"


async def test_a_stale_application_revision_is_refused(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    commands = sample.sample_commands(TODAY)
    async with (
        running_gateway(settings_for(f"sqlite:///{tmp_path}/g.db", broker)) as gw,
        central(broker, gw.base) as c,
    ):
        for i, command in enumerate(commands):
            assert (await c.request(command, f"s-{i}"))["status"] == "ok"
        app = next(
            x.application
            for x in commands
            if isinstance(x, m.PutApplication) and x.application.revision == 1
        )
        older = m.PutApplication(
            application=AccessApplication.model_validate(
                {**app.model_dump(), "status": ApplicationStatus.WITHDRAWN}
            )
        )
        before = store_snapshot(gw.gateway)
        response = await c.request(older, "stale-1")
        assert response["status"] == "error"
        assert response["error"]["code"] == "STALE"
        assert response["error"]["field"]
        after = store_snapshot(gw.gateway)
        assert after == {**before, "inbox": before["inbox"] + 1}


async def test_an_expired_request_is_refused_and_never_applied(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    org = m.PutOrganisation(organisation=Organisation(org_number=sample.SUB, name="Signal AB"))
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    async with (
        running_gateway(settings_for(f"sqlite:///{tmp_path}/g.db", broker)) as gw,
        central(broker, gw.base) as c,
    ):
        before = store_snapshot(gw.gateway)
        expired = await c.request(org, "exp-1", expires_at=past)
        assert expired["status"] == "error"
        assert expired["error"]["code"] == "EXPIRED"
        assert expired["error"]["field"] == "expires_at"
        assert store_snapshot(gw.gateway) == before
        # Not recorded: the same id with a later expiry is applied.
        await c.publish("organisation", body(org, "exp-1", expires_at=future))
        await c.wait_for(lambda: len(c.responses["exp-1"]) == 2)
        assert c.responses["exp-1"][1]["status"] == "ok"
        # Applied once, a late duplicate gets the stored response, not EXPIRED.
        await c.publish("organisation", body(org, "exp-1", expires_at=past))
        await c.wait_for(lambda: len(c.responses["exp-1"]) == 3)
        assert c.responses["exp-1"][2] == c.responses["exp-1"][1]
        # Another request under that id, expired: EXPIRED, not the other request's answer.
        other = m.PutOrganisation(organisation=Organisation(org_number=sample.SUB, name="X AB"))
        await c.publish("organisation", body(other, "exp-1", expires_at=past))
        await c.wait_for(lambda: len(c.responses["exp-1"]) == 4)
        assert c.responses["exp-1"][3]["error"]["code"] == "EXPIRED"
        assert count(gw.gateway, tables.organisation) == 1


async def test_mqtt5_response_topic_and_correlation_data_are_honoured(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    org = m.PutOrganisation(organisation=Organisation(org_number=sample.MAIN, name="Bygg AB"))
    async with (
        running_gateway(settings_for(f"sqlite:///{tmp_path}/g.db", broker)) as gw,
        central(broker, gw.base) as c,
    ):
        reply_to = f"{gw.base}/v1/response/organisation/erp-7"
        await c.publish(
            "organisation", body(org, "v5-1"), correlation=b"\x01corr", response_topic=reply_to
        )
        response = await c.correlated(b"\x01corr")
        assert response["request_id"] == "v5-1"
        assert response["status"] == "ok"
        assert [t for t, _ in c.by_correlation[b"\x01corr"]] == [reply_to]
        assert c.on("v1/response/organisation") == [], "one response, on the requested topic"
        # A response topic outside the response tree is refused, on the default topic.
        await c.publish(
            "organisation",
            body(org, "v5-2"),
            correlation=b"c2",
            response_topic=f"{gw.base}/v1/credential/1/state",
        )
        refused = await c.correlated(b"c2")
        assert refused["request_id"] == "v5-2"
        assert refused["error"]["code"] == "INVALID"
        assert refused["error"]["field"] == "response_topic"
        assert c.by_correlation[b"c2"][0][0] == f"{gw.base}/v1/response/organisation"
        assert count(gw.gateway, tables.organisation) == 1


async def test_the_client_property_selects_the_operator(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    seen: list[str] = []
    org = m.PutOrganisation(organisation=Organisation(org_number=sample.MAIN, name="Bygg AB"))
    settings = settings_for(
        f"sqlite:///{tmp_path}/g.db", broker, client_operators={"erp": "erp-integration"}
    )

    def listener(session: Any, core: Core, ctx: Any, changes: Any) -> None:
        if ctx is not None:
            seen.append(ctx.operator)

    async with (
        running_gateway(settings, listeners=[listener]) as gw,
        central(broker, gw.base) as c,
    ):
        assert (await c.request(org, "op-1"))["status"] == "ok"
        assert (await c.request(org, "op-2", client="erp"))["status"] == "ok"
        unknown = await c.request(org, "op-3", client="intruder")
        assert unknown["error"]["code"] == "FORBIDDEN"
        assert unknown["error"]["field"] == "client"
        assert seen == [settings.mqtt.system_operator, "erp-integration"]


async def test_revocations_overtake_queued_requests(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    """With the core busy, a queue of ordinary requests builds up; an ID06 block published
    after them is applied before every one of them that was still queued."""
    commands = sample.sample_commands(TODAY)
    settings = settings_for(f"sqlite:///{tmp_path}/g.db", broker, max_batch=5)
    applied: list[str] = []

    def listener(session: Any, core: Core, ctx: Any, changes: Any) -> None:
        if ctx is not None and ctx.request_id and ctx.request_id.startswith(("q-", "urgent")):
            applied.append(ctx.request_id)

    async with (
        running_gateway(settings, listeners=[listener]) as gw,
        central(broker, gw.base) as c,
    ):
        for i, command in enumerate(commands):
            assert (await c.request(command, f"s-{i}"))["status"] == "ok"
        gate = asyncio.Event()
        loop = asyncio.get_running_loop()
        # Occupy the core thread until every request below has arrived.
        blocker = asyncio.ensure_future(
            gw.gateway.call(lambda: asyncio.run_coroutine_threadsafe(gate.wait(), loop).result())
        )
        try:
            for i in range(40):
                competence = Competence(
                    person_id="p-anna", code=f"C{i}", valid_until=TODAY + timedelta(days=30 + i)
                )
                await c.publish(
                    "competence", body(m.PutCompetence(competence=competence), f"q-{i}")
                )
            await c.publish("id06_block", body(m.BlockId06(card_number="ID06BK0001"), "urgent"))
            session = gw.bridge.session
            assert session is not None
            await poll_until(lambda: len(session.buffer) >= 30)
        finally:
            gate.set()
            await blocker
        await c.wait_for(lambda: "urgent" in c.responses and len(c.responses) >= len(commands) + 41)
        assert c.responses["urgent"][0]["status"] == "ok"
        position = applied.index("urgent")
        assert position <= 10, applied[:12]  # only requests taken before it arrived go first
        assert all(c.responses[f"q-{i}"][0]["status"] == "ok" for i in range(40))


def test_every_command_can_be_published_as_a_request() -> None:
    """The flattened request body of each sample command validates back to the command."""
    from gateway.bridge.envelope import ParsedRequest, parse_request

    for i, command in enumerate(story()):
        parsed = parse_request(command.name, json.dumps(body(command, f"r{i}")).encode())
        assert isinstance(parsed, ParsedRequest), parsed
        assert parsed.command == command


def test_the_bridge_is_built_only_when_enabled(broker: PrivateMosquitto, tmp_path: Path) -> None:
    from gateway.compose import build_gateway, mqtt_bridge

    on = build_gateway(settings_for(f"sqlite:///{tmp_path}/a.db", broker))
    off = build_gateway(settings_for(f"sqlite:///{tmp_path}/b.db", broker, enabled=False))
    try:
        bridge = mqtt_bridge(on)
        assert bridge is not None
        assert bridge.publisher in on.core.listeners
        assert mqtt_bridge(off) is None
        assert not [s for s in off.services if isinstance(s, MqttBridge)]
    finally:
        on.db.dispose()
        off.db.dispose()


async def test_requests_survive_the_database_dropping_its_connections(
    pg_url: str, pg_server: str, broker: PrivateMosquitto
) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = make_url(pg_url).database
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    org = Organisation(org_number=sample.MAIN, name="Bygg AB")
    try:
        async with (
            running_gateway(settings_for(pg_url, broker)) as gw,
            central(broker, gw.base) as c,
        ):
            assert (await c.request(m.PutOrganisation(organisation=org), "db-1"))["status"] == "ok"
            with admin.connect() as conn:
                killed = conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                ).scalar_one()
            assert killed >= 1
            renamed = Organisation(org_number=sample.MAIN, name="Bygg och Signal AB")
            response = await c.request(m.PutOrganisation(organisation=renamed), "db-2")
            assert response["status"] == "ok"
            assert gw.bridge.connections == 1
    finally:
        admin.dispose()


async def test_a_failing_database_is_retried_and_a_broken_request_isolated(
    broker: PrivateMosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Faults injected into the core: a transient database error is retried with the whole
    batch; a request whose transaction fails for another reason gets INTERNAL alone."""
    from sqlalchemy.exc import OperationalError

    calls: list[int] = []
    real = Core.submit_many

    def flaky(self: Core, submissions: Any, **kw: Any) -> Any:
        calls.append(len(submissions))
        if len(calls) == 1:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        if any(s.request_id == "poison" for s in submissions):
            raise RuntimeError("a bug")
        return real(self, submissions, **kw)

    org = Organisation(org_number=sample.MAIN, name="Bygg AB")
    async with (
        running_gateway(settings_for(f"sqlite:///{tmp_path}/g.db", broker)) as gw,
        central(broker, gw.base) as c,
    ):
        monkeypatch.setattr(Core, "submit_many", flaky)
        assert (await c.request(m.PutOrganisation(organisation=org), "retry-1"))["status"] == "ok"
        assert calls[:2] == [1, 1]
        gate = asyncio.Event()
        loop = asyncio.get_running_loop()
        blocker = asyncio.ensure_future(
            gw.gateway.call(lambda: asyncio.run_coroutine_threadsafe(gate.wait(), loop).result())
        )
        try:
            for rid in ("ok-1", "poison", "ok-2"):
                await c.publish("organisation", body(m.PutOrganisation(organisation=org), rid))
            session = gw.bridge.session
            assert session is not None
            await poll_until(lambda: session.unacknowledged == 3)
        finally:
            gate.set()
            await blocker
        assert (await c.response("poison"))["error"]["code"] == "INTERNAL"
        assert (await c.response("ok-1"))["status"] == "ok"
        assert (await c.response("ok-2"))["status"] == "ok"
        with gw.gateway.db.session(readonly=True) as s:
            assert inbox.lookup(s, "poison") is None
            assert inbox.lookup(s, "ok-1") is not None

"""Outbound messages: retained credential state keyed by number only, revocation events with
increasing sequences, availability, the relay's order and its behaviour through outages."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session

from gateway.audit import log as audit_log
from gateway.bridge import schemas
from gateway.bridge.outbound import StatePublisher
from gateway.bridge.payloads import (
    AccessEventBody,
    Event,
    ProgrammingResultBody,
    RetainedCredentialState,
    RevocationConfirmedBody,
)
from gateway.bridge.topics import TopicMap
from gateway.commands import model as m
from gateway.compose import build_gateway, mqtt_bridge
from gateway.core import Core
from gateway.demo.broker import PrivateMosquitto
from gateway.domain import DEFAULT_TIMEZONE
from gateway.domain.facts import Competence
from gateway.store import outbox
from gateway.store.database import Database
from tests import sample
from tests.gateway.bridge.harness import (
    central,
    poll_until,
    register_system_operators,
    running_gateway,
    settings_for,
)

TODAY = date.today()
PERSONAL = [
    "Anna",
    "Lindqvist",
    "Björn",
    "Helena",
    "Berg",
    "+4670",
    "ID06AN0001",
    "ID06DN0001",
    "p-anna",
    "emp-",
    "Hissservice",
]


async def load_story(c: Any) -> None:
    for i, command in enumerate(sample.sample_commands(TODAY)):
        assert (await c.request(command, f"s-{i}"))["status"] == "ok"


def pending_rows(gateway: Any) -> int:
    with gateway.db.session(readonly=True) as s:
        return outbox.count_pending(s)


async def test_credential_state_is_retained_keyed_by_number_without_personal_data(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    async with (
        running_gateway(settings_for(f"sqlite:///{tmp_path}/g.db", broker)) as gw,
        central(broker, gw.base, clear_retained=False) as c,
    ):
        await load_story(c)
        await poll_until(lambda: pending_rows(gw.gateway) == 0)
        number = sample.KEY_ANNA
        await c.wait_for(lambda: bool(c.on(f"v1/credential/{number}/state")))
        # Every topic carries ids and numbers only.
        for topic, payload, _ in c.messages:
            assert re.fullmatch(rf"{gw.base}/v1/[a-z0-9_/]+", topic), topic
            if "/credential/" in topic or topic.endswith("/events"):
                for word in PERSONAL:
                    assert word not in topic
                    assert word.encode() not in payload, (topic, word)
        states = {
            topic.split("/")[-2]: RetainedCredentialState.model_validate_json(payload)
            for topic, payload, _ in c.messages
            if "/credential/" in topic and payload
        }
        anna = states[number]
        assert anna.number == number
        assert anna.kind == "key"
        assert anna.desired.active
        assert anna.confirmed is None
        assert anna.pending
        assert sorted({g.space for g in anna.desired.grants}) == ["sp-signal", "sp-tech"]
        assert states[sample.KEY_DAVID].desired.revoked
        assert states[sample.KEY_DAVID].desired.reasons == ["ID06_BLOCKED"]
        assert states[sample.KEY_IN_STOCK].desired.reasons == ["NOT_HANDED_OUT"]
    # Retained: a newcomer subscribing afterwards gets the latest state at once.
    async with central(broker, gw.base, subscribe="v1/credential/+/state") as late:
        await late.wait_for(lambda: bool(late.on(f"v1/credential/{number}/state")))
        payload, _ = late.on(f"v1/credential/{number}/state")[-1]
        state = RetainedCredentialState.model_validate_json(payload)
        assert state.desired.revision == anna.desired.revision


async def test_revocations_emit_one_event_each_with_increasing_sequence(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    async with (
        running_gateway(settings_for(f"sqlite:///{tmp_path}/g.db", broker)) as gw,
        central(broker, gw.base) as c,
    ):
        await load_story(c)
        response = await c.request(m.BlockId06(card_number="ID06AN0001", reason="lost"), "blk")
        assert response["status"] == "ok"
        # An unrelated change to a revoked credential's holder is no new revocation.
        await c.request(m.RemoveCompetence(person_id="p-anna", code="ELSAK"), "rm")
        await c.request(m.ReportCredential(credential_number=sample.KEY_ERIK, outcome="lost"), "l")
        await poll_until(lambda: pending_rows(gw.gateway) == 0)
        await c.wait_for(lambda: len(c.events()) >= 4)
        events = [Event.model_validate(e).root for e in c.events()]
        revoked = [(e.number, e.request_id) for e in events if e.kind == "credential_revoked"]
        story = sample.sample_commands(TODAY)
        block = next(i for i, x in enumerate(story) if isinstance(x, m.BlockId06))
        terminate = max(i for i, x in enumerate(story) if isinstance(x, m.PutAgreement))
        assert sorted(revoked) == sorted(
            [
                (sample.KEY_DAVID, f"s-{block}"),  # the sample story blocks David's card
                (sample.KEY_GUSTAV, f"s-{terminate}"),  # and ends Kabelkonsult's agreement
                (sample.KEY_ANNA, "blk"),
                (sample.TAG_ANNA, "blk"),
                (sample.KEY_ERIK, "l"),
            ]
        ), revoked
        seqs = [e.seq for e in events]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == len(seqs)
        assert len({e.id for e in events}) == len(events)


async def test_confirmed_revision_comes_from_the_lookup(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/g.db", broker)
    confirmed: dict[str, tuple[str, datetime]] = {}

    def lookup(session: Session, core: Any, number: str) -> tuple[str, datetime] | None:
        return confirmed.get(number)

    register_system_operators(settings)
    gateway = build_gateway(settings)
    bridge = mqtt_bridge(gateway)
    assert bridge is not None
    bridge.publisher.confirmed_lookup = lookup
    async with gateway, central(broker, settings.mqtt.base_topic) as c:
        await poll_until(bridge.connected.is_set)
        await load_story(c)
        revision = gateway.core.engine.states[sample.KEY_ANNA].revision
        at = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
        confirmed[sample.KEY_ANNA] = (revision, at)
        core = gateway.core

        def confirm(core: Core) -> int:
            with core.db.session() as s:
                return bridge.publisher.enqueue_credential_state(s, core, sample.KEY_ANNA)

        await gateway.call(confirm, core)

        def latest() -> RetainedCredentialState | None:
            got = c.on(f"v1/credential/{sample.KEY_ANNA}/state")
            return RetainedCredentialState.model_validate_json(got[-1][0]) if got else None

        await c.wait_for(lambda: (s := latest()) is not None and s.confirmed is not None)
        state = latest()
        assert state is not None
        assert state.confirmed is not None
        assert state.confirmed.revision == revision
        assert state.confirmed.at == at
        assert not state.pending


async def test_availability_and_events_can_be_enqueued_by_other_services(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    async with (
        running_gateway(settings_for(f"sqlite:///{tmp_path}/g.db", broker)) as gw,
        central(broker, gw.base) as c,
    ):
        publisher = gw.bridge.publisher
        core = gw.gateway.core

        def enqueue(core: Core) -> None:
            with core.db.session() as s:
                publisher.enqueue_availability(s, "station-1", False, "no answer on /dev/ttyUSB0")
                publisher.enqueue_event(
                    s,
                    ProgrammingResultBody(
                        device_id="station-1",
                        number="100000001",
                        credential_revision="r1",
                        device_revision="i1",
                        ok=True,
                    ),
                )
                publisher.enqueue_event(
                    s,
                    AccessEventBody(
                        kind="access_denied",
                        number="100000001",
                        device_id="ctrl-office",
                        lock="ctrl-office:1",
                        occurred_at="2026-11-23T07:59:00+00:00",
                        source="controller",
                        reason="outside schedule",
                    ),
                )

        await gw.gateway.call(enqueue, core)
        await c.wait_for(
            lambda: len(c.events()) == 2 and bool(c.on("v1/device/station-1/availability"))
        )
        availability = json.loads(c.on("v1/device/station-1/availability")[0][0])
        assert availability["state"] == "offline"
        assert availability["reason"] == "no answer on /dev/ttyUSB0"
        # seq numbers every event in the order it was queued, after the availability queued
        # before them in the same transaction
        first, second = (e["seq"] for e in c.events())
        assert [e["kind"] for e in c.events()] == ["programming_result", "access_denied"]
        assert second > first > 0
        assert c.events()[1]["lock"] == "door:ctrl-office/1"  # published in one notation

        def invalid(core: Core, call: Any) -> str:
            with core.db.session() as s:
                try:
                    call(s)
                except ValueError as exc:
                    return str(exc)
            return "accepted"

        cases = {
            "device_id": lambda s: publisher.enqueue_availability(s, "bad/id", True, ""),
            "reason": lambda s: publisher.enqueue_availability(s, "st-2", True, "x" * 300),
        }
        for field, call in cases.items():
            message = await gw.gateway.call(invalid, core, call)
            assert message.startswith(field), (field, message)
        # An event body is checked when it is made; the gateway's own fields are not in it.
        with pytest.raises(ValidationError) as missing:
            RevocationConfirmedBody(number="1", device_id="d")
        assert [e["loc"] for e in missing.value.errors()] == [("revision",)]
        with pytest.raises(ValidationError) as reserved:
            RevocationConfirmedBody(number="1", device_id="d", revision="r", seq=5)
        assert [e["loc"] for e in reserved.value.errors()] == [("seq",)]


async def test_the_audit_anchor_is_published_as_an_event(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/g.db", broker)
    settings.audit.anchor_every_s = 0.1
    async with running_gateway(settings) as gw, central(broker, gw.base) as c:

        def log_one(core: Core) -> audit_log.Entry:
            with core.db.session() as s:
                return audit_log.append(
                    s, at=core.clock(), actor="test", action="test.anchor", data={"n": 1}
                )

        entry = await gw.gateway.call(log_one, gw.gateway.core)

        def anchors() -> list[dict[str, Any]]:
            return [e for e in c.events() if e["kind"] == "audit_anchor"]

        await c.wait_for(lambda: any(a["head_seq"] == entry.seq for a in anchors()))
        anchor = anchors()[-1]
        assert (anchor["head_seq"], anchor["head_hash"]) == (entry.seq, entry.hash)
        assert datetime.fromisoformat(anchor["head_at"]) == entry.at
        Event.model_validate(anchor)


async def test_the_relay_publishes_at_once_and_marks_what_it_published_later_together(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    """Marks are written together, apart from the publication: a message goes out as soon
    as it is committed, its mark comes with others; stopping the bridge writes the marks
    still waiting (and a crash before would only publish them again)."""
    url = f"sqlite:///{tmp_path}/g.db"
    async with running_gateway(settings_for(url, broker)) as gw:
        relay = gw.bridge.relay
        assert relay is not None
        await poll_until(lambda: pending_rows(gw.gateway) == 0)
        relay.MARK_AFTER_S = 600.0  # marks wait for a batch (or the bridge's stop)
        published = relay.published
        async with central(broker, gw.base) as c:
            await load_story(c)
            await poll_until(lambda: relay.published > published)
            out = relay.published - published
            assert pending_rows(gw.gateway) >= out > 0  # out, but not marked yet
            # ... and not published twice meanwhile: the relay reads past its unmarked rows
            await c.request(m.BlockId06(card_number="ID06CE0001"), "block")
            await c.wait_for(
                lambda: any(
                    e["kind"] == "credential_revoked" and e["number"] == sample.KEY_CECILIA
                    for e in c.events()
                )
            )
            revoked = [
                e
                for e in c.events()
                if e["kind"] == "credential_revoked" and e["number"] == sample.KEY_CECILIA
            ]
            assert len(revoked) == 1
    db = Database(url)
    try:
        with db.session(readonly=True) as s:
            assert outbox.count_pending(s) == 0  # the stop wrote the waiting marks
    finally:
        db.dispose()


async def test_the_relay_keeps_working_through_a_broker_outage(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/g.db", broker)
    async with running_gateway(settings) as gw:
        async with central(broker, gw.base) as c:
            await load_story(c)
        await poll_until(lambda: pending_rows(gw.gateway) == 0)
        broker.stop()
        await poll_until(lambda: not gw.bridge.connected.is_set())
        # Changes keep coming while the broker is away (e.g. from the CLI or the sync engine).
        await gw.gateway.call(
            lambda: gw.gateway.core.execute(
                m.BlockId06(card_number="ID06CE0001"), operator="tester"
            )
        )
        assert pending_rows(gw.gateway) >= 2
        broker.start()
        async with central(broker, gw.base) as c:
            await poll_until(lambda: gw.bridge.connected.is_set())
            await poll_until(lambda: pending_rows(gw.gateway) == 0)
            # (After the reconnect the gateway first replays what it published recently, the
            # story's states and events included: wait for the revocation itself.)
            await c.wait_for(
                lambda: any(
                    e["kind"] == "credential_revoked" and e["number"] == sample.KEY_CECILIA
                    for e in c.events()
                )
            )

            def last_state() -> RetainedCredentialState:
                state, _ = c.on(f"v1/credential/{sample.KEY_CECILIA}/state")[-1]
                return RetainedCredentialState.model_validate_json(state)

            await c.wait_for(lambda: last_state().desired.revoked)
            assert gw.bridge.connections == 2
            assert json.loads(c.on("v1/bridge/state")[-1][0]) == {
                "state": "online",
                "instance": gw.bridge.instance,
            }


async def test_a_broker_without_the_session_gets_every_retained_state_again(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/g.db"
    settings = settings_for(url, broker)
    async with running_gateway(settings) as gw, central(broker, gw.base) as c:
        await load_story(c)
    numbers = set(gw.gateway.core.engine.states)
    # The same database, a client id the broker has no session for: all states again.
    again = settings_for(
        url, broker, base=settings.mqtt.base_topic, client_id=f"x{uuid.uuid4().hex}"
    )
    async with (
        central(broker, settings.mqtt.base_topic, subscribe="v1/credential/#") as c,
        running_gateway(again) as gw2,
    ):
        await poll_until(lambda: pending_rows(gw2.gateway) == 0)
        await c.wait_for(lambda: {t.split("/")[-2] for t, p, r in c.messages if not r} >= numbers)


def test_publisher_payload_for_an_unknown_credential_clears_the_retained_state(
    tmp_path: Path,
) -> None:
    from gateway.store import migrate

    url = f"sqlite:///{tmp_path}/p.db"
    migrate.upgrade(url)
    db = Database(url)
    try:
        core = Core(db)
        core.load()
        publisher = StatePublisher(TopicMap("site-a"))
        with db.session() as s:
            publisher.enqueue_credential_state(s, core, "123")
        with db.session(readonly=True) as s:
            (row,) = outbox.pending(s)
        assert row.topic == "site-a/v1/credential/123/state"
        assert row.payload == b""
        assert row.retain
        with pytest.raises(ValueError, match="number"):
            TopicMap("site-a").credential_state("1/2")
    finally:
        db.dispose()


async def test_the_state_publishes_a_window_per_space_and_shows_a_shortened_competence(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    """Only the revision changed when a competence was shortened: the windows per space show
    what changed."""
    async with (
        running_gateway(settings_for(f"sqlite:///{tmp_path}/g.db", broker)) as gw,
        central(broker, gw.base) as c,
    ):
        await load_story(c)
        topic = f"v1/credential/{sample.KEY_ANNA}/state"
        await c.wait_for(lambda: bool(c.on(topic)))

        def latest() -> RetainedCredentialState:
            return RetainedCredentialState.model_validate_json(c.on(topic)[-1][0])

        before = latest()
        windows = {g.space: g.window for g in before.desired.grants}
        assert set(windows) == {"sp-signal", "sp-tech"}
        shorter = TODAY + timedelta(days=30)
        renewal = m.PutCompetence(
            competence=Competence(person_id="p-anna", code="ELSAK", valid_until=shorter)
        )
        count = len(c.on(topic))
        assert (await c.request(renewal, "shorter"))["status"] == "ok"
        await c.wait_for(lambda: len(c.on(topic)) > count)
        after = latest()
        assert after.desired.revision != before.desired.revision
        now = {g.space: g.window for g in after.desired.grants}
        assert now["sp-signal"] == windows["sp-signal"]
        assert now["sp-tech"].start == windows["sp-tech"].start
        end = now["sp-tech"].end
        assert end is not None and windows["sp-tech"].end is not None
        assert end < windows["sp-tech"].end
        assert end.astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date() == shorter + timedelta(days=1)
        # Every published state follows its schema, grants included.
        schema = schemas.schema_files()["credential_state.json"]
        jsonschema.validate(json.loads(c.on(topic)[-1][0]), schema)

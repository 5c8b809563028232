"""The story the demo tells: the rail-key process of the seeds, on a simulated site.

Each step acts as the party that would act in reality — the owner's central system over MQTT,
an access administrator at the command line, an operator at the desk station, reception —
and then checks that lockgate and the simulated hardware behaved exactly as the rules say.
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from gateway.commands import model as m
from gateway.core import Core, Submission
from gateway.demo import cast
from gateway.demo.central import Central
from gateway.demo.narrator import Narrator, StepFailed, StepResult
from gateway.documents.receipt import receipt_for, render_receipt
from gateway.domain.facts import (
    AccessApplication,
    ApplicationEntry,
    ApplicationStatus,
    CredentialState,
    DeliveryManifest,
    KeyOrder,
)
from gateway.domain.timeutil import ScheduleInterval, WeeklySchedule
from gateway.imports.manifest import (
    parse_delivery_manifest,
    parse_returned_manifest,
    resolve_returned,
)
from gateway.reports.exposure import BLACKLIST_PENDING, BLOCKED, exposure
from gateway.rules import DESCRIPTIONS, LockRef, Reason, explain
from gateway.runtime import Gateway
from gateway.store import device_records as sync_store
from gateway.sync.station import StationWorker
from simulators.site import SimulatedSite

DESK = "desk-1"
WALL = "wall-hallsberg"
CONTROLLER = cast.CONTROLLER
GATE = cast.GATE
HUT = cast.HUT
TAG = cast.TAG_ANNA
VISITOR = cast.VISITOR_CARD

PEOPLE = [
    # key, employment, person, first, last, org, ID06 card
    (cast.KEY_ANNA, "emp-anna", "p-anna", "Anna", "Lindqvist", cast.MAIN, "ID06AN0001"),
    (
        cast.KEY_BJORN_MAIN,
        "emp-bjorn-main",
        "p-bjorn",
        "Björn",
        "Karlsson",
        cast.MAIN,
        "ID06BK0001",
    ),
    (
        cast.KEY_BJORN_SUB,
        "emp-bjorn-sub",
        "p-bjorn",
        "Björn",
        "Karlsson",
        cast.SUB,
        "ID06BK0002",
    ),
    (cast.KEY_CECILIA, "emp-cecilia", "p-cecilia", "Cecilia", "Ek", cast.SUB, "ID06CE0001"),
]
KEYS = [p[0] for p in PEOPLE]


@dataclass
class Actors:
    """Who does what in the story: operator names, each registered with its role."""

    central: str = "central-system"
    administrator: str = "ingrid.admin"
    issuer: str = "ulla.utfardare"
    access_admin: str = "tor.tilltrade"
    receptionist: str = "rita.resepsjonist"
    reception: str = "randi.resepsjon"
    hr: str = "hanna.hr"

    def roles(self) -> list[tuple[str, str, str | None]]:
        """(name, role, title) of every operator except the bootstrap administrator."""
        return [
            (self.central, "system", None),
            (self.issuer, "issuer", "operations technician"),
            (self.access_admin, "access_administrator", None),
            (self.receptionist, "issuer", "receptionist"),
            (self.reception, "reception", None),
            (self.hr, "hr", None),
        ]


@dataclass
class Story:
    """Everything the steps act on."""

    gateway: Gateway
    site: SimulatedSite
    central: Central
    stations: dict[str, StationWorker]
    folder: Path
    narrator: Narrator
    events: list[tuple[str, dict[str, Any]]]
    actors: Actors = field(default_factory=Actors)

    @property
    def core(self) -> Core:
        return self.gateway.core

    # ------------------------------------------------------------------ helpers

    async def act(self, operator: str, *commands: m.Command) -> list[dict[str, Any]]:
        """An operator's commands, applied together (as a CLI command does)."""
        outcomes = await self.gateway.call(
            self.core.submit_many, [Submission(c, operator) for c in commands]
        )
        for o, c in zip(outcomes, commands, strict=True):
            if not o.ok:
                raise StepFailed(f"{c.name} refused: {o.error}")
        return [o.data for o in outcomes]

    async def ask(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """The central system's request; it must be accepted."""
        response = await self.central.request(name, body)
        if response.get("status") != "ok":
            raise StepFailed(f"request {name} refused: {response.get('error')}")
        return response

    async def until(
        self, predicate: Callable[[], Awaitable[bool]], what: str, within: float = 15.0
    ) -> float:
        started = time.perf_counter()
        while not await predicate():
            if time.perf_counter() - started > within:
                raise StepFailed(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)
        return time.perf_counter() - started

    async def controller_in_sync(self, controller: str = CONTROLLER) -> bool:
        def check() -> bool:
            with self.core.db.session(readonly=True) as s:
                held = sync_store.get_controller(s, controller)
            return (
                held is not None
                and held.revision == self.core.engine.controller(controller).revision
            )

        return await self.gateway.call(check)

    async def controllers_in_sync(self) -> bool:
        """Every door controller of the site holds its desired allow-list."""
        for controller in (c.id for c in self.site.spec.controllers):
            if not await self.controller_in_sync(controller):
                return False
        return True

    async def at_station(self, station: str, serial: str) -> str:
        """Insert a key, wait until its visit is served, take it out; return the outcome."""
        worker = self.stations[station]
        before = len(worker.visits)
        self.site.insert(station, serial)
        await self.until(
            _async(lambda: len(worker.visits) > before), f"key {serial} served at {station}"
        )
        outcome = worker.visits[-1].outcome
        if self.site.stations[station].device.key is not None:
            self.site.remove(station)
        return outcome

    def explain_lock(self, serial: str, lock: str) -> Any:
        return explain(self.core.engine, serial, LockRef.parse(lock))

    def today(self) -> date:
        return self.core.clock().astimezone(self.core.cfg.timezone).date()


def _async(fn: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def wrapper() -> bool:
        return fn()

    return wrapper


# ---------------------------------------------------------------------------- the steps


async def operators(st: Story) -> None:
    n = st.narrator
    from gateway.auth import manage
    from gateway.auth.authorizer import Authorizer
    from gateway.auth.passwords import hash_token, new_token

    actors = st.actors

    def register(s: Any) -> None:
        now = st.core.clock()
        manage.bootstrap(s, name=actors.administrator, at=now, token_hash=hash_token(new_token()))
        authorizer = st.core.authorizer
        assert isinstance(authorizer, Authorizer)
        for name, role, title in actors.roles():
            manage.add_operator(
                s,
                authorizer,
                actors.administrator,
                name=name,
                role=role,
                title=title,
                at=now,
                token_hash=hash_token(new_token()),
            )

    await st.gateway.call(st.core.transaction, register)
    n.say(
        f"{actors.administrator} (administrator) registers the operators: "
        + ", ".join(
            f"{name} ({role}{', ' + title if title else ''})"
            for name, role, title in actors.roles()
        )
    )
    refused = await st.gateway.call(
        st.core.submit, Submission(m.RegisterTags(numbers=("4000999",)), actors.reception)
    )
    n.say(
        f"reception tries to issue a new tag: [red]{refused.error['code'] if refused.error else ''}"
        f"[/] — {refused.error['message'] if refused.error else ''}"
    )
    n.check(
        not refused.ok and refused.error is not None and refused.error["code"] == "FORBIDDEN",
        "reception may only change existing cards: issuing a new one is refused",
    )


async def agreements(st: Story) -> None:
    n = st.narrator
    n.say(f"The owner's central system publishes the master data through {st.central.via}.")
    today = st.today()
    for org, name in (
        (cast.MAIN, "Banbyggarna i Mälardalen AB"),
        (cast.SUB, "Signalteknik Norr AB"),
    ):
        await st.ask("organisation", {"organisation": {"org_number": org, "name": name}})
    for aid, org in (("agr-main", cast.MAIN), ("agr-sub", cast.SUB)):
        await st.ask(
            "agreement",
            {
                "agreement": {
                    "id": aid,
                    "org_number": org,
                    "signed_on": (today - timedelta(days=30)).isoformat(),
                    "valid_from": (today - timedelta(days=30)).isoformat(),
                }
            },
        )
    n.say(
        "Banbyggarna (main contractor) and Signalteknik (subcontractor) have signed key "
        "grant agreements."
    )
    seen: set[str] = set()
    for _key, emp, person, first, last, org, card in PEOPLE:
        if person not in seen:
            seen.add(person)
            await st.ask(
                "person", {"person": {"id": person, "first_name": first, "last_name": last}}
            )
        await st.ask(
            "employment",
            {
                "employment": {
                    "id": emp,
                    "person_id": person,
                    "org_number": org,
                    "id06": {
                        "card_number": card,
                        "valid_until": (today + timedelta(days=700)).isoformat(),
                    },
                }
            },
        )
    for person in ("p-anna", "p-bjorn"):
        await st.ask(
            "competence",
            {
                "competence": {
                    "person_id": person,
                    "code": "ELSAK",
                    "valid_until": (today + timedelta(days=300)).isoformat(),
                }
            },
        )
    for space in st.site.spec.spaces:
        await st.ask(
            "space",
            {
                "space": {
                    "id": space.id,
                    "name": space.name,
                    "cylinders": [str(c) for c in space.cylinders],
                    "doors": [{"controller_id": d.controller, "door": d.door} for d in space.doors],
                    "required_competences": space.required_competences,
                    "revalidation_days": space.revalidation_days,
                }
            },
        )
    await st.ask(
        "assignment",
        {
            "assignment": {
                "id": "asg-hallsberg",
                "name": "Signalbyte Hallsberg",
                "main_contractor": cast.MAIN,
                "project_manager": "Karin Sjöberg",
                "starts_on": (today - timedelta(days=7)).isoformat(),
                "ends_on": (today + timedelta(days=180)).isoformat(),
            }
        },
    )
    n.say(
        "Björn works for both companies: two employments, two ID06 registrations. Anna and "
        "Björn hold the ELSAK competence; Cecilia does not."
    )
    facts = st.core.engine.facts
    n.check(
        len(facts.agreements) == 2 and len(facts.employments) == 4,
        "2 agreements, 4 employments and the site's spaces are registered",
    )


async def delivery(st: Story) -> None:
    n = st.narrator
    now = st.core.clock()
    orders = {
        "order-main-1": (cast.MAIN, [cast.KEY_ANNA, cast.KEY_BJORN_MAIN]),
        "order-sub-1": (cast.SUB, [cast.KEY_BJORN_SUB, cast.KEY_CECILIA]),
    }
    for oid, (org, keys) in orders.items():
        await st.act(
            st.actors.issuer,
            m.PlaceKeyOrder(
                order=KeyOrder(
                    id=oid,
                    org_number=org,
                    quantity=len(keys),
                    delivery_address="Stationsgatan 1, Hallsberg",
                    ordered_at=now,
                )
            ),
        )
        path = st.folder / f"delivery-{oid}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter=";")
            w.writerow(["Nyckelnummer"])
            w.writerows([[k] for k in keys])
        serials = parse_delivery_manifest(path)
        await st.act(
            st.actors.issuer,
            m.RegisterDelivery(
                manifest=DeliveryManifest(
                    order_id=oid, delivered_at=now, key_serials=tuple(serials)
                )
            ),
        )
        n.say(f"key order {oid}: {len(keys)} keys delivered; manifest {path.name} imported")
    states = st.core.engine.states
    n.check(
        all(states[k].reasons == (Reason.NOT_HANDED_OUT,) for k in KEYS),
        "every delivered key is inactive: NOT_HANDED_OUT",
    )


async def handout(st: Story) -> None:
    n = st.narrator
    path = st.folder / "returned-manifest.xlsx"
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Nyckelnummer", "Förnamn", "Efternamn", "ID06"])
    for key, _emp, _p, first, last, _org, card in PEOPLE:
        ws.append([key, first, last, card])
    wb.save(path)
    rows = parse_returned_manifest(path)
    facts = st.core.engine.facts
    links = await st.gateway.call(
        lambda: resolve_returned(
            rows,
            credential=facts.credentials.get,
            employment_by_id06=lambda c: facts.employments.get(facts.employment_by_card.get(c, "")),
            person=facts.persons.get,
            keys_of_employment=lambda e: [
                facts.credentials[x] for x in facts.credentials_by_employment.get(e, ())
            ],
        )
    )
    await st.act(
        st.actors.access_admin,
        *(
            m.HandOut(credential_number=link.credential_number, employment_id=link.employment_id)
            for link in links
        ),
    )
    n.say(f"the contractors returned {path.name}: {len(links)} keys linked to their holders")
    receipts = st.folder / "receipts"
    receipts.mkdir(exist_ok=True)
    zone = st.gateway.settings.site.timezone
    for key in KEYS:
        doc = await st.gateway.call(receipt_for, st.core.engine.facts, key, zone)
        (receipts / f"receipt-{key}.pdf").write_bytes(render_receipt(doc))
    n.say(f"handout receipts produced: {receipts}/receipt-*.pdf")
    states = st.core.engine.states
    n.check(
        all(states[k].reasons == (Reason.RECEIPT_UNSIGNED,) for k in KEYS),
        "until the receipts are signed the keys stay inactive: RECEIPT_UNSIGNED",
    )
    await st.act(st.actors.access_admin, *(m.SignReceipt(credential_number=k) for k in KEYS))
    states = st.core.engine.states
    n.check(
        all(facts.credentials[k].state is CredentialState.IN_SERVICE for k in KEYS),
        "signed receipts put the keys in service",
    )
    n.check(
        all(states[k].reasons == (Reason.NO_APPROVED_APPLICATION,) for k in KEYS),
        "still inactive: no approved access application names them yet",
    )


async def application(st: Story) -> None:
    n = st.narrator
    today = st.today()
    weekdays = WeeklySchedule(
        intervals=(
            ScheduleInterval(
                days=(0, 1, 2, 3, 4),
                start=datetime.min.time().replace(hour=6),
                end=datetime.min.time().replace(hour=18),
            ),
        )
    )

    def entry(
        emp: str, spaces: tuple[str, ...], sched: WeeklySchedule | None = None
    ) -> ApplicationEntry:
        return ApplicationEntry(
            employment_id=emp,
            space_ids=spaces,
            valid_from=today,
            valid_until=today + timedelta(days=150),
            schedule=sched,
        )

    now = st.core.clock()
    app = AccessApplication(
        assignment_id="asg-hallsberg",
        revision=1,
        status=ApplicationStatus.SUBMITTED,
        submitted_at=now - timedelta(minutes=5),
        entries=(
            entry("emp-anna", ("sp-tech", "sp-signal", "sp-office")),
            entry("emp-bjorn-main", ("sp-signal", "sp-depot")),
            entry("emp-bjorn-sub", ("sp-signal",), weekdays),
            entry("emp-cecilia", ("sp-tech", "sp-signal")),
        ),
    )
    body = app.model_dump(mode="json")
    await st.ask("application", {"application": body})
    n.say("the main contractor's access application (revision 1) is submitted")
    approved = dict(body, status="approved", decided_at=now.isoformat())
    response = await st.ask("application", {"application": approved})
    n.say(
        f"the project manager approves it; lockgate answers {response['status']!r} "
        f"(request {response['request_id']})"
    )
    states = st.core.engine.states
    n.check(all(states[k].active for k in KEYS), "all four keys are now active")
    denied = dict(states[cast.KEY_CECILIA].denied)
    n.check(
        denied.get("sp-tech") is Reason.COMPETENCE_MISSING,
        "Cecilia is not granted the technical building: COMPETENCE_MISSING (no ELSAK)",
    )


async def desk_station(st: Story) -> None:
    n = st.narrator
    n.say(f"the operator inserts each key at the desk station {DESK} and confirms the write")
    for key in KEYS:
        outcome = await st.at_station(DESK, key)
        visit = st.stations[DESK].visits[-1]
        detail = (
            f"{visit.result.bytes_sent} bytes, {visit.result.frames_sent} frames, verified"
            if visit.result
            else visit.outcome
        )
        n.say(f"key {key}: {len(visit.planned.cylinders)} cylinders — {detail}")
        n.check(outcome == "written", f"key {key} programmed and verified")

    def confirmed() -> bool:
        with st.core.db.session(readonly=True) as s:
            return all(
                (k := sync_store.get_key(s, key)) is not None
                and k.credential_revision == st.core.engine.states[key].revision
                for key in KEYS
            )

    n.check(
        await st.gateway.call(confirmed),
        "the store's confirmed image of every key equals its desired revision",
    )


async def cylinders(st: Story) -> None:
    n = st.narrator
    all_cylinders = st.site.spec.cylinders()
    mismatches = []
    opened = 0
    for key in KEYS:
        for cyl in all_cylinders:
            decision = st.site.visit(key, cyl)
            allowed = st.explain_lock(key, f"cylinder:{cyl}").can_open
            opened += bool(decision["granted"])
            if bool(decision["granted"]) != bool(allowed):
                mismatches.append((key, cyl, decision, allowed))
    n.say(f"{len(KEYS)} keys tried {len(all_cylinders)} cylinders each: {opened} opened")
    n.check(not mismatches, "every cylinder decided exactly as the rules engine says")
    refused = st.site.visit(cast.KEY_CECILIA, sample_int(cast.CYL_TECH[0]))
    why = st.explain_lock(cast.KEY_CECILIA, f"cylinder:{cast.CYL_TECH[0]}")
    failed = [c for c in why.checks + why.lock_checks if not c.held]
    n.say(
        f"Cecilia's key at cylinder {cast.CYL_TECH[0]} (Teknikhus): "
        f"[red]refused[/] ({refused['reason']}); explain says:"
    )
    for c in failed:
        n.say(
            f"   ✘ {c.condition} — {c.source}: {c.detail}"
            + (f" [{c.reason.value}: {DESCRIPTIONS[c.reason]}]" if c.reason else "")
        )
    n.check(
        not refused["granted"] and any(c.reason is Reason.COMPETENCE_MISSING for c in failed),
        "the refusal is explained: COMPETENCE_MISSING",
    )


def sample_int(text: str) -> int:
    return int(text)


async def tag(st: Story) -> None:
    n = st.narrator
    await st.act(
        st.actors.issuer,
        m.RegisterTags(numbers=(TAG,)),
        m.HandOut(credential_number=TAG, employment_id="emp-anna"),
    )
    n.check(
        st.core.engine.states[TAG].reasons[0]
        in (Reason.RECEIPT_UNSIGNED, Reason.HR_APPROVAL_MISSING),
        "Anna's employee tag waits for HR's approval and her signature",
    )
    await st.act(st.actors.hr, m.ApproveEmployeeCard(credential_number=TAG))
    await st.act(st.actors.access_admin, m.SignReceipt(credential_number=TAG))
    took = await st.until(st.controllers_in_sync, "the controllers' allow-lists")
    n.say(
        f"the door controllers {CONTROLLER} (Modbus), {GATE} (UHPPOTE, written card by "
        f"card, revocations first) and {HUT} (OSDP readers, lockgate their panel) verified "
        f"their new allow-lists in {took * 1000:.0f} ms"
    )
    granted = await st.site.present(CONTROLLER, int(TAG), 1)
    n.check(bool(granted["granted"]), "Anna's tag opens door 1 (office entrance)")
    gate = await st.site.present(GATE, int(TAG), 1)
    n.check(bool(gate["granted"]), f"and the office gate (UHPPOTE controller {GATE}, door 1)")
    hut = await st.site.present(HUT, int(TAG), 1)
    n.check(
        bool(hut["granted"]),
        f"and the technical hut's OSDP reader ({HUT}): lockgate itself decides, as its panel",
    )
    other = await st.site.present(CONTROLLER, int(TAG), 4)
    n.check(not other["granted"], "it does not open door 4, which no space of hers has")
    stranger = await st.site.present(CONTROLLER, 4_999_999, 1)
    n.check(not stranger["granted"], "an unknown tag is refused")


async def block(st: Story) -> None:
    n = st.narrator
    signal = int(cast.CYL_SIGNAL[0])
    started = time.perf_counter()
    await st.ask(
        "id06_block",
        {"card_number": "ID06AN0001", "reason": "reported lost to the ID06 blocking register"},
    )
    n.say(
        "the ID06 blocking register reports Anna's card: lockgate revokes everything of "
        "that employment, revocations first"
    )
    confirmed: dict[str, float] = {}

    def revoked_everywhere() -> bool:
        for k, b in st.events:
            if k == "revocation_confirmed" and b.get("credential") == TAG:
                confirmed.setdefault(b["device"], time.perf_counter() - started)
        return {CONTROLLER, GATE, HUT} <= set(confirmed)

    await st.until(_async(revoked_everywhere), "the controllers' revocations")
    for device, kind in ((CONTROLLER, "Modbus"), (GATE, "UHPPOTE"), (HUT, "OSDP reader")):
        n.say(
            f"controller {device} ({kind}) confirmed the revocation "
            f"{confirmed[device] * 1000:.0f} ms after the request"
        )
    n.check(
        not (await st.site.present(CONTROLLER, int(TAG), 1))["granted"],
        "Anna's tag is refused at door 1",
    )
    n.check(
        not (await st.site.present(GATE, int(TAG), 1))["granted"],
        f"and at the office gate ({GATE})",
    )
    n.check(
        not (await st.site.present(HUT, int(TAG), 1))["granted"],
        f"and at the technical hut's reader ({HUT})",
    )

    def rows() -> dict[str, str]:
        with st.core.db.session(readonly=True) as s:
            return {
                r.lock: r.status
                for r in exposure(s, st.core.engine, st.core.clock())
                if r.credential == cast.KEY_ANNA
            }

    exposed = await st.gateway.call(rows)
    n.say(
        f"her key is out of reach: still exposed on {len(exposed)} cylinders "
        f"({', '.join(sorted(exposed))})"
    )
    n.check(
        exposed.get(f"cylinder:{signal}") == BLACKLIST_PENDING,
        f"cylinder {signal}: blacklist pending (no key has carried it there yet)",
    )
    outcome = await st.at_station(WALL, cast.KEY_BJORN_MAIN)
    n.say(f"Björn's key visits the wall station {WALL} ({outcome}): it now carries the blacklist")
    n.check(
        bool(st.site.visit(cast.KEY_BJORN_MAIN, signal)["granted"]),
        f"Björn opens cylinder {signal}, which learns the blacklist from his key",
    )
    refused = st.site.visit(cast.KEY_ANNA, signal)
    n.check(
        not refused["granted"] and refused["reason"] == "BLACKLISTED",
        f"Anna's revoked key is refused at cylinder {signal}: BLACKLISTED",
    )
    await st.at_station(WALL, cast.KEY_BJORN_MAIN)
    exposed = await st.gateway.call(rows)
    n.check(
        exposed.get(f"cylinder:{signal}") == BLOCKED,
        "Björn's next station visit brings back the cylinder's confirmation: blocked",
    )


async def visitor(st: Story) -> None:
    n = st.narrator
    until = (st.core.clock() + timedelta(hours=2)).astimezone(UTC)
    await st.act(
        st.actors.receptionist,
        m.IssueVisitorCard(
            number=VISITOR,
            holder_name="Helena Berg",
            company="Hissservice AB",
            mobile="+46709990001",
            sponsor_employment_id="emp-bjorn-main",
            reason="supplier",
            space_ids=("sp-office",),
            valid_until=until,
            confirmed_in_person=True,
            return_duty_acknowledged=True,
        ),
    )
    local = until.astimezone(st.core.cfg.timezone).strftime("%H:%M")
    n.say(
        f"reception issues visitor card {VISITOR} to a lift technician, sponsor Björn, "
        f"valid until {local} today"
    )
    await st.until(st.controllers_in_sync, "the controllers' allow-lists")
    n.check(
        bool((await st.site.present(CONTROLLER, int(VISITOR), 1))["granted"]),
        "the visitor card opens the office entrance",
    )
    await st.act(st.actors.reception, m.ReturnVisitorCard(number=VISITOR))
    card = st.core.engine.facts.visitor_cards[VISITOR]
    n.check(
        card.erased and card.holder_name == "[erased]" and card.mobile == "[erased]",
        "returned: the holder's name, company and mobile are erased",
    )
    await st.until(st.controllers_in_sync, "the controllers' allow-lists")
    n.check(
        not (await st.site.present(CONTROLLER, int(VISITOR), 1))["granted"],
        "the returned card no longer opens the door",
    )


async def audit(st: Story) -> None:
    n = st.narrator
    from gateway.audit import log as audit_log

    def verify() -> Any:
        with st.core.db.session(readonly=True) as s:
            return audit_log.verify(s), audit_log.entries(s, subject=f"credential {VISITOR}")

    result, visitor_entries = await st.gateway.call(verify)
    n.say(
        f"{result.entries} audit entries: every command, refusal, programming result and "
        "device event of the story, each holding the hash of the one before"
    )
    n.check(result.ok, "lockgate audit verify: the hash chain is intact")
    personal = [e for e in visitor_entries if e.personal]
    n.check(
        bool(visitor_entries) and not personal,
        f"the visitor card's {len(visitor_entries)} entries keep no personal data after "
        "its return, and the chain still verifies",
    )


Step = tuple[str, str, Callable[[Story], Awaitable[None]]]

STEPS: list[Step] = [
    ("operators", "Operators registered with their roles", operators),
    ("agreements", "Organisations sign key grant agreements", agreements),
    ("delivery", "Key order placed, delivery manifest imported (keys inactive)", delivery),
    ("handout", "Returned manifest links people and keys; receipts signed", handout),
    ("application", "Access application approved (central system)", application),
    ("desk_station", "Keys programmed and verified at the desk station", desk_station),
    ("cylinders", "Keys open exactly what they may at offline cylinders", cylinders),
    ("tag", "A tag is granted at the three kinds of door", tag),
    ("id06_block", "ID06 card blocked: revocation reaches every door and the cylinder", block),
    ("visitor", "Visitor card issued, used, returned and erased", visitor),
    ("audit", "The tamper-evident audit log verifies", audit),
]


async def run_story(story: Story, steps: list[Step] | None = None) -> None:
    chosen = steps or STEPS
    n = story.narrator
    for i, (name, title, fn) in enumerate(chosen, 1):
        n.step(i, len(chosen), title)
        started = time.perf_counter()
        try:
            await fn(story)
            n.record(StepResult(name, title, True, time.perf_counter() - started))
        except Exception as exc:  # a failed step is reported, and the story stops
            n.console.print(f"  [red]step failed: {type(exc).__name__}: {exc}[/]")
            n.record(StepResult(name, title, False, time.perf_counter() - started, str(exc)))
            break

"""The core's side of the site agents: a gateway service that publishes each site's desired
device state and applies what the agents report, as the local controller workers do.

- **Down**: for every site whose agent is online, a :class:`SiteDesired` document per change
  (a delta against the revision last sent, with each changed controller's whole allow-list),
  sites with revoking changes first; a full document when the agent connects, refuses a
  document, or has not reported the revision last sent within ``resend_s``.
- **Up**: confirmations and events are applied in one core transaction per batch, each once
  (recorded by the store id it was queued under and its sequence number in the same
  transaction, :mod:`gateway.agent.applied`; an allow-list already confirmed, an event
  already stored change nothing either), and acknowledged to the agent only after the
  commit.

A site's controllers are those its agent names in its state; with ``sites`` given (the
``hub.sites`` setting), only those sites are accepted, each only with the controllers pinned
to it: a controller pinned to another site is logged and neither served nor reported on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiomqtt
from pydantic import ValidationError
from sqlalchemy.orm import Session

from drivers.base import ControllerEventKind, DenyReason
from gateway.agent.applied import AppliedReports
from gateway.agent.keyhub import KeyHub, key_filters
from gateway.agent.link import link_error, publish_all, tls_context
from gateway.agent.parts import wire
from gateway.bridge.sitepayloads import (
    AllowEntryDoc,
    ControllerDoc,
    ScheduleDoc,
    SiteAck,
    SiteConfirm,
    SiteConfirms,
    SiteDesired,
    SiteEvent,
    SiteState,
    WindowDoc,
    dump,
)
from gateway.bridge.topics import TopicMap
from gateway.config import MqttSettings
from gateway.rules.engine import Changes
from gateway.rules.hardware import DesiredController
from gateway.runtime import Gateway, cancel_and_wait
from gateway.store import device_records as sync_store
from gateway.sync.controller import EVENT_KINDS
from gateway.sync.events import SyncSink
from gateway.sync.images import allow_list
from gateway.sync.planner import CONTROLLER

log = logging.getLogger(__name__)

MAX_LOST = 10_000
"""Lost-event reports of agents before store ids the hub remembers having applied (see
:meth:`SiteHub._apply_events_lost`)."""

MAX_BATCH = 500
"""Agent reports applied in one core transaction at most."""
KEEP_SNAPSHOTS = 16
"""Revisions per site whose content the hub remembers, to send deltas against them."""


@dataclass
class SiteView:
    """What the hub knows of one site."""

    site: str
    controllers: list[str] = field(default_factory=list)
    online: bool = False
    agent_revision: int | None = None
    sent_revision: int = 0
    sent_at: float = 0.0
    snapshots: dict[int, dict[str, str]] = field(default_factory=dict)
    """Revision -> controller -> controller revision, of the documents sent."""
    held: dict[str, frozenset[int]] = field(default_factory=dict)
    """The credentials on each controller's list in the last document sent (to tell which
    changes revoke; the lists themselves are rebuilt from the rules engine when needed)."""
    full: bool = True
    dirty: bool = False
    touched: dict[str, set[str]] = field(default_factory=dict)
    """Controller -> credentials whose desired state changed since it last confirmed."""
    applied: set[int] = field(default_factory=set)
    confirmations: int = 0


class SiteHub:
    """A gateway service (``build_gateway(extra_services=[...])``) serving the site agents."""

    name = "sites"

    def __init__(
        self,
        mqtt: MqttSettings,
        sink: SyncSink,
        *,
        sites: Mapping[str, Collection[str]] | None = None,
        username: str | None = None,
        password: str | None = None,
        resend_s: float = 5.0,
        part_bytes: int = 262144,
        may_connect: Callable[[], bool] = lambda: True,
    ) -> None:
        self.mqtt = mqtt
        self.may_connect = may_connect
        """Asked before every connection: a core that is not the leader stays off the broker
        (the same gate as its MQTT bridge's)."""
        self.topics = TopicMap(mqtt.base_topic)
        self.sink = sink
        self.allowed = {k: set(v) for k, v in sites.items()} if sites is not None else None
        """With pins (``sites``, or ``hub.sites`` in the configuration): site -> the only
        controllers it is served; sites not named are ignored."""
        self._pins = {c: k for k, v in (sites or {}).items() for c in v}
        self._refused: set[tuple[str, str]] = set()
        self.username = username if username is not None else mqtt.username
        self.password = password if password is not None else mqtt.password
        self.resend_s = resend_s
        self.part_bytes = part_bytes
        """Largest document sent in one message; larger ones go in parts."""
        self.sites: dict[str, SiteView] = {}
        self.owner: dict[str, str] = {}
        self.gateway: Gateway | None = None
        self.messages_in = 0
        self.messages_out = 0
        self.confirmations = 0
        self.confirm_s = 0.0
        """Core time spent applying confirmations (for bench/sites.py)."""
        self._client: aiomqtt.Client | None = None
        self._wake = asyncio.Event()
        self._reports: asyncio.Queue[SiteConfirm | SiteEvent] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._lost: dict[tuple[str, int, int, int, str], None] = {}
        """Lost-event reports without a store id applied (controller, generation, first,
        last, reason), newest last: a redelivered one is recognised here while the hub
        runs."""
        self.applied = AppliedReports()
        """The reports applied, recorded in the store (:mod:`gateway.agent.applied`)."""
        self.keys = KeyHub(self)
        """The sites' key stations (:mod:`gateway.agent.keyhub`)."""

    # ------------------------------------------------------------------ life cycle

    async def start(self, gateway: Gateway) -> None:
        self.gateway = gateway
        gateway.observe(self.on_changes)
        self._task = asyncio.create_task(self._run(), name="lockgate-sites")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def on_changes(self, changes: Changes) -> None:
        """Mark the sites whose controllers' desired state changed."""
        for cid in changes.controllers:
            site = self.owner.get(cid)
            if site is not None:
                view = self.sites[site]
                view.dirty = True
                view.touched.setdefault(cid, set()).update(changes.credentials)
        self.keys.on_changes(changes)
        self._wake.set()

    # ------------------------------------------------------------------ the link

    def _client_of(self) -> aiomqtt.Client:
        m = self.mqtt
        return aiomqtt.Client(
            m.host,
            m.port,
            username=self.username,
            password=self.password,
            identifier=self.username or f"{m.client_id}-sites",
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=True,
            keepalive=m.keepalive_s,
            tls_context=tls_context(m),
            timeout=10,
        )

    async def _run(self) -> None:
        delay = 0.5
        while True:
            # A predicate of the clock and the lease, not an event: poll it.
            while not self.may_connect():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            try:
                async with self._client_of() as client:
                    self._client = client
                    delay = 0.5
                    await client.subscribe(
                        [
                            (self.topics.filter(k), 1)
                            for k in ("site_state", "site_confirm", "site_events")
                        ]
                        + key_filters(self.topics.filter)
                    )
                    log.info("site hub connected to the broker")
                    publisher = asyncio.create_task(
                        self._publish_loop(client), name="lockgate-sites-publish"
                    )
                    applier = asyncio.create_task(
                        self._applier(client), name="lockgate-sites-apply"
                    )
                    keys = asyncio.create_task(self.keys.serve(client), name="lockgate-sites-keys")
                    try:
                        async for message in client.messages:
                            await self._received(client, message)
                    finally:
                        await cancel_and_wait(keys)
                        self.keys.disconnected()
                        await cancel_and_wait(applier)
                        await cancel_and_wait(publisher)
                        # unacknowledged reports are sent again by their agents
                        self._reports = asyncio.Queue()
            except aiomqtt.MqttError as exc:
                log.warning("site hub: %s", link_error(exc, self.mqtt))
            except Exception:
                log.exception("site hub: the link failed; reconnecting")
            finally:
                self._client = None
                for view in self.sites.values():
                    # what was sent while the link broke may be lost: send it whole again
                    view.full = view.dirty = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _received(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        """Handle one message: states at once, reports through the applier."""
        self.messages_in += 1
        where = self.topics.site_of(message.topic.value)
        raw = message.payload if isinstance(message.payload, bytes) else b""
        if where is None:
            return
        key, site = where
        if self.allowed is not None and site not in self.allowed:
            log.warning("site hub: message from unknown site %s ignored", site)
            return
        if self.keys.received(key, site, raw):
            return
        try:
            match key:
                case "site_state":
                    if raw:
                        self._on_state(SiteState.model_validate_json(raw), site)
                case "site_confirm":
                    for confirm in _confirms(raw):
                        self._report(confirm, site)
                case "site_events":
                    self._report(SiteEvent.model_validate_json(raw), site)
        except ValidationError as exc:
            first = exc.errors()[0]
            log.warning(
                "site hub: malformed %s from site %s refused: %s: %s",
                key,
                site,
                ".".join(str(x) for x in first["loc"]),
                first["msg"],
            )

    def _on_state(self, state: SiteState, site: str) -> None:
        if state.site != site:
            log.warning("site hub: state of %s published on site %s ignored", state.site, site)
            return
        first = site not in self.sites
        view = self.sites.setdefault(site, SiteView(site))
        wanted = self._pinned(site, list(state.controllers))
        mine: list[str] = []
        for cid in wanted:
            owner = self.owner.setdefault(cid, site)
            if owner != site:
                log.warning("site hub: controller %s claimed by %s belongs to %s", cid, site, owner)
                continue
            mine.append(cid)
        view.controllers = mine
        view.online = state.online
        view.agent_revision = state.revision
        if state.online and (
            first or state.reason == "connected" or state.reason.startswith("refused")
        ):
            # first heard of since this core started (its retained state), connected, or
            # refused a document: a full document sets it right
            if state.reason.startswith("refused"):
                log.warning(
                    "site %s refused revision %d: %s", site, view.sent_revision, state.reason
                )
            view.full = True
            view.dirty = True
            self._wake.set()
        log.info(
            "site %s is %s, holds revision %s (%s)",
            site,
            "online" if state.online else "offline",
            state.revision,
            state.reason,
        )

    def is_controller(self, site: str, device: str) -> bool:
        """Whether ``device`` is a door controller to the hub: one ``site`` serves, one it
        named but may not serve, one pinned to any site, or one another site serves. A
        report about such a device is never taken for a key station's."""
        view = self.sites.get(site)
        return (
            (view is not None and device in view.controllers)
            or (site, device) in self._refused
            or device in self._pins
            or any(device in v.controllers for v in self.sites.values())
        )

    def _pinned(self, site: str, named: list[str]) -> list[str]:
        """The controllers of ``named`` that ``site`` may serve: all of them without pins;
        with pins only those pinned to it (each other one is logged once: pinned to another
        site, or to none)."""
        if self.allowed is None:
            return named
        mine = self.allowed[site]
        for cid in named:
            if cid in mine or (site, cid) in self._refused:
                continue
            self._refused.add((site, cid))
            elsewhere = self._pins.get(cid)
            log.warning(
                "site hub: site %s names controller %s, %s: not served there",
                site,
                cid,
                f"pinned to site {elsewhere}" if elsewhere else "pinned to no site",
            )
        return [c for c in named if c in mine]

    # ------------------------------------------------------------------ down: desired state

    def _build(self, views: list[SiteView]) -> list[tuple[SiteView, SiteDesired, bool]]:
        """On the core thread: the document each site needs now (sites with nothing to send
        are left out), and whether it revokes. A delta holds only the controllers whose
        desired revision differs from the document sent last."""
        assert self.gateway is not None
        engine = self.gateway.core.engine
        out: list[tuple[SiteView, SiteDesired, bool]] = []
        for view in views:
            base = None if view.full else view.sent_revision
            before = view.snapshots.get(base, {}) if base is not None else {}
            revisions: dict[str, str] = {}
            changed: dict[str, ControllerDoc] = {}
            for cid in view.controllers:
                desired = engine.controller(cid)
                revisions[cid] = desired.revision
                if base is not None and before.get(cid) == desired.revision:
                    continue
                changed[cid] = self._controller_doc(view, desired)
            if base is not None and not changed:
                view.dirty = False
                continue
            revision = max(view.sent_revision, view.agent_revision or 0) + 1
            ordered = dict(sorted(changed.items(), key=lambda kv: not kv[1].revoking))
            doc = SiteDesired(
                site=view.site,
                revision=revision,
                base=base,
                controllers=ordered,
                issued_at=datetime.now(UTC),
            )
            out.append((view, doc, any(d.revoking for d in ordered.values())))
            view.snapshots[revision] = revisions
            for old_rev in sorted(view.snapshots)[:-KEEP_SNAPSHOTS]:
                del view.snapshots[old_rev]
            for cid, cdoc in changed.items():
                view.held[cid] = frozenset(e.credential for e in cdoc.entries)
            view.sent_revision = revision
            view.full = False
            view.dirty = False
        return out

    @staticmethod
    def _controller_doc(view: SiteView, desired: DesiredController) -> ControllerDoc:
        """One controller's desired state as a document entry; ``revoking`` when it lacks a
        credential the last document sent to the site gave it."""
        entries, schedules = allow_list(desired)
        old = view.held.get(desired.controller_id)
        revoking = old is not None and bool(old - {e.credential for e in entries})
        return ControllerDoc(
            revision=desired.revision,
            revoking=revoking,
            entries=[
                AllowEntryDoc(
                    credential=e.credential,
                    doors_mask=e.doors_mask,
                    valid_from=e.valid_from,
                    valid_until=e.valid_until,
                    schedule_id=e.schedule_id,
                )
                for e in entries
            ],
            schedules=[
                ScheduleDoc(
                    schedule_id=s.schedule_id,
                    windows=[
                        WindowDoc(
                            days_mask=w.days_mask,
                            start_minute=w.start_minute,
                            end_minute=w.end_minute,
                        )
                        for w in s.windows
                    ],
                )
                for s in schedules
            ],
        )

    async def _publish_loop(self, client: aiomqtt.Client) -> None:
        assert self.gateway is not None
        while True:
            now = time.monotonic()
            for view in self.sites.values():
                if (
                    view.online
                    and view.sent_revision
                    and view.agent_revision != view.sent_revision
                    and now - view.sent_at > self.resend_s
                ):
                    log.info(
                        "site %s holds revision %s, not the %d sent: sending it whole",
                        view.site,
                        view.agent_revision,
                        view.sent_revision,
                    )
                    view.full = view.dirty = True
            due = [v for v in self.sites.values() if v.online and v.dirty and v.controllers]
            try:
                await self._publish_due(client, due)
            except aiomqtt.MqttError:
                raise
            except Exception:
                log.exception("site hub: publishing desired state failed; retrying")
                for view in due:
                    view.full = view.dirty = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._wake.wait()
            self._wake.clear()

    async def _publish_due(self, client: aiomqtt.Client, due: list[SiteView]) -> None:
        """Build and publish the documents ``due`` sites need, revoking sites first."""
        assert self.gateway is not None
        if not due:
            return
        docs = await self.gateway.call(self._build, due)
        ordered = sorted(docs, key=lambda d: not d[2])
        # handed to the client in this order, revoking sites first, a large document in
        # parts; the PUBACKs are awaited together
        messages = [
            (self.topics.site("site_desired", view.site), raw)
            for view, doc, _ in ordered
            for raw in wire(doc, self.part_bytes)
        ]
        await publish_all(client, messages, "lockgate-sites-desired")
        now = time.monotonic()
        for view, _, _ in ordered:
            view.sent_at = now
        self.messages_out += len(messages)

    # ------------------------------------------------------------------ up: confirmations, events

    def _controller_of(self, site: str, controller: str) -> bool:
        """Whether ``site`` serves ``controller``: it named it in its state, and no other site
        named it first (and, with ``sites`` given, it is one of that site's). A report about
        another controller is refused (not acknowledged)."""
        view = self.sites.get(site)
        if view is None or controller not in view.controllers:
            log.warning(
                "site hub: site %s reports controller %s it does not serve", site, controller
            )
            return False
        return True

    def _report(self, report: SiteConfirm | SiteEvent, site: str) -> None:
        """Queue an agent's report for the applier (confirmations that revoke first)."""
        if isinstance(report, SiteEvent) and self.keys.station_event(report, site):
            return
        if report.site != site or not self._controller_of(site, report.controller):
            return
        self._reports.put_nowait(report)

    async def _applier(self, client: aiomqtt.Client) -> None:
        """Apply the queued reports in batches, one core transaction each, then acknowledge
        them (one acknowledgement per site and batch)."""
        while True:
            try:
                await self._apply_batch(client)
            except aiomqtt.MqttError:
                raise
            except Exception:
                # the reports were not acknowledged: their agents send them again
                log.exception("site hub: applying reports failed")

    async def _apply_batch(self, client: aiomqtt.Client) -> None:
        """Apply one batch of queued reports and acknowledge it."""
        batch = [await self._reports.get()]
        while not self._reports.empty() and len(batch) < MAX_BATCH:
            batch.append(self._reports.get_nowait())
        batch.sort(key=lambda r: not isinstance(r, SiteConfirm))
        started = time.perf_counter()
        done = await self._apply(batch)
        confirms = sum(1 for r in done if isinstance(r, SiteConfirm))
        self.confirm_s += time.perf_counter() - started
        self.confirmations += confirms
        acks: dict[tuple[str, str | None], list[int]] = {}
        for r in done:
            acks.setdefault((r.site, r.store), []).append(r.seq)
        await publish_all(
            client,
            [
                (
                    self.topics.site("site_ack", site),
                    dump(SiteAck(site=site, store=store, seqs=seqs)),
                )
                for (site, store), seqs in acks.items()
            ],
            "lockgate-sites-ack",
        )
        self.messages_out += len(acks)

    async def _apply(self, batch: list[SiteConfirm | SiteEvent]) -> list[SiteConfirm | SiteEvent]:
        """Apply ``batch`` in one transaction; if that fails, each report alone (a report
        that fails alone is logged, not acknowledged: its agent sends it again later).
        Returns the reports applied."""
        assert self.gateway is not None
        core = self.gateway.core
        # What changed since each controller's last confirmation, as it is now (a copy: only
        # a confirmation that is applied and committed uses it up, see _used_touched).
        touched = {
            (r.site, r.controller): set(self.sites[r.site].touched.get(r.controller, ()))
            for r in batch
            if isinstance(r, SiteConfirm) and r.site in self.sites
        }
        confirmed: set[tuple[str, str]] = set()

        def apply_all(s: Session, reports: list[SiteConfirm | SiteEvent]) -> None:
            confirmed.clear()
            for r in self.applied.fresh(s, reports, core.clock()):
                if isinstance(r, SiteConfirm):
                    key = (r.site, r.controller)
                    if self._apply_confirm(s, r, touched.get(key, set())):
                        confirmed.add(key)
                else:
                    self._apply_event(s, r)

        try:
            await self.gateway.call(core.transaction, lambda s: apply_all(s, batch))
            self._applied_lost(batch)
            self._used_touched(touched, confirmed)
            return batch
        except Exception:
            if len(batch) == 1:
                log.exception("site hub: a report of site %s failed", batch[0].site)
                return []
        applied: list[SiteConfirm | SiteEvent] = []
        for r in batch:
            applied += await self._apply([r])
        return applied

    def _applied_lost(self, batch: list[SiteConfirm | SiteEvent]) -> None:
        """Remember the lost-event reports without a store id of a committed batch (the
        newest MAX_LOST)."""
        for r in batch:
            if isinstance(r, SiteEvent) and r.kind == "events_lost" and r.store is None:
                self._lost[_lost_key(r)] = None
        while len(self._lost) > MAX_LOST:
            del self._lost[next(iter(self._lost))]

    def _used_touched(
        self, touched: dict[tuple[str, str], set[str]], confirmed: set[tuple[str, str]]
    ) -> None:
        """Forget the changes a committed confirmation reported; what changed meanwhile, and
        what a skipped repeat or a failed batch did not report, waits for the next one."""
        for site, controller in confirmed:
            view = self.sites.get(site)
            if view is None:
                continue
            left = view.touched.get(controller)
            if left is not None:
                left -= touched.get((site, controller), set())
                if not left:
                    del view.touched[controller]

    def _apply_confirm(self, s: Session, c: SiteConfirm, touched: set[str]) -> bool:
        """Record a controller's confirmation and report what it changed; ``False`` when
        the store already holds it (nothing reported)."""
        assert self.gateway is not None
        core = self.gateway.core
        old = sync_store.get_controller(s, c.controller)
        if (
            old is not None
            and old.revision == c.revision
            and old.checksum == c.checksum
            and old.generation == c.generation
        ):
            return False  # already applied
        now = core.clock()
        sync_store.confirm_controller(
            s, c.controller, c.revision, c.checksum, c.generation, c.credentials, c.entries, now
        )
        sync_store.finish_job(s, CONTROLLER, c.controller, c.revision)
        before = set(old.credentials) if old else set()
        after = set(c.credentials)
        self.sink.event(
            s,
            "allow_list_written",
            {
                "device": c.controller,
                "revision": c.revision,
                "entries": c.entries,
                "checksum": c.checksum,
                "ms": c.ms,
                "site": c.site,
            },
        )
        for number in sorted(before - after, key=int):
            self.sink.event(
                s, "revocation_confirmed", {"credential": number, "device": c.controller}
            )
        for number in sorted((before ^ after) | (touched & (before | after)), key=int):
            self.sink.credential_state(s, core, number)
        return True

    def _apply_events_lost(self, s: Session, e: SiteEvent) -> None:
        """Report events a site's controller lost before they were read, as the core's own
        controller worker does. A redelivery is skipped before (:class:`AppliedReports`); of
        an agent before store ids, one of a gap reported since the hub started."""
        if e.store is None and _lost_key(e) in self._lost:
            return
        reason = e.reason or "overwritten"
        self.sink.event(
            s,
            "controller_events_lost",
            {
                "device": e.controller,
                "first": e.sequence,
                "last": e.last,
                "reason": reason,
                "error": f"events {e.sequence}..{e.last} {reason}",
            },
        )

    def _apply_event(self, s: Session, e: SiteEvent) -> None:
        assert self.gateway is not None
        now = self.gateway.core.clock()
        if e.kind == "availability":
            online = bool(e.online)
            reason = e.reason or ("connected" if online else "offline")
            if sync_store.set_device_status(
                s, e.controller, "controller", online, reason, now, {"site": e.site}
            ):
                self.sink.availability(s, e.controller, online, reason)
            return
        if e.kind == "events_lost":
            self._apply_events_lost(s, e)
            return
        try:
            kind = EVENT_KINDS[ControllerEventKind(e.event)]
        except ValueError:
            log.warning(
                "site hub: event %r of controller %s (site %s) is of no known kind: dropped",
                e.event,
                e.controller,
                e.site,
            )
            return
        stored = sync_store.StoredControllerEvent(
            e.controller, e.generation, e.sequence, e.event, e.credential, e.door, e.at
        )
        for ev in sync_store.add_controller_events(s, [stored], now):
            # the body the core's own controller worker reports (gateway.sync.controller)
            body: dict[str, object] = {
                "device": e.controller,
                "door": ev.door,
                "at": ev.at.isoformat(),
                "sequence": ev.sequence,
            }
            if ev.kind in ("granted", "denied") or ev.credential != "0":
                body["credential"] = ev.credential
            if ev.kind == "denied":
                body["reason"] = e.reason or DenyReason.OTHER.value
            self.sink.event(s, kind, body)


def _lost_key(e: SiteEvent) -> tuple[str, int, int, int, str]:
    return (e.controller, e.generation, e.sequence, e.last, e.reason or "")


def _confirms(raw: bytes) -> list[SiteConfirm]:
    """The confirmations of a ``confirm`` message: a :class:`SiteConfirms`, or one
    :class:`SiteConfirm` from an agent before confirmations were coalesced."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return [SiteConfirm.model_validate_json(raw)]  # raises the ValidationError
    if "confirms" in body:
        whole = SiteConfirms.model_validate(body)
        # a confirmation queued under an earlier store id names it; the rest share the message's
        return [
            c.model_copy(
                update={"store": c.store or whole.store, "oldest": c.oldest or whole.oldest}
            )
            for c in whole.confirms
        ]
    return [SiteConfirm.model_validate(body)]


__all__ = ["SiteHub", "SiteView"]

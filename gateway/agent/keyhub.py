"""The site hub's key stations: planned key images for the sites' agents, and what their
stations report, recorded as the core's own station worker records it.

- **Down**: a :class:`SiteKeyImage` per key a site asks for (a key just inserted at one of its
  stations, or every key it caches after connecting), planned by
  :func:`gateway.sync.images.plan_key_image` with the cylinders' current blacklists; and, for
  every key a site cached, a new image whenever the key's desired state or the blacklist of a
  cylinder it opens changed. Revoking images first. Versions grow per key (the wall clock
  in milliseconds, above the last one sent).
- **Up**: :class:`SiteKeyVisit` (audit records, cylinders' blacklist confirmations, the image
  the key held) and :class:`SiteKeyConfirm` (the image a station verified) are applied in
  order, one core transaction per batch, through :func:`gateway.sync.station.record_key_visit`
  and :func:`~gateway.sync.station.record_key_confirmed`, and :class:`SiteKeyFailed` (a
  write that failed or was interrupted) through
  :func:`~gateway.sync.station.record_key_failed`, each once (recorded by the store id it
  was queued under and its sequence number in the same transaction,
  :mod:`gateway.agent.applied`; records already stored, an image already confirmed change
  nothing either), and acknowledged after the commit.

A station belongs to the first site that reports it; a report about another site's station,
or about a station the core serves itself, is refused (logged, not acknowledged).

**Scope of images.** A site gets images only of keys that visited one of its own stations (a
visit that site reported and the hub applied, recorded in the store as a site key visit, so a
restarted core still answers) or that it caches from earlier answers. A request for any other
key waits up to :data:`VISIT_WAIT_S` for the visit the agent sends before it (they travel
separately), is answered once that visit is applied, and otherwise is refused: logged with
the reason and answered with nothing (the agent serves the key as when the core is away).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

import aiomqtt
from pydantic import ValidationError
from sqlalchemy.orm import Session

from drivers.base import KeyImage
from gateway.agent.keydocs import audit_record, image_doc, key_image
from gateway.agent.link import publish_all
from gateway.bridge.sitepayloads import (
    SiteAck,
    SiteEvent,
    SiteKeyConfirm,
    SiteKeyFailed,
    SiteKeyImage,
    SiteKeyRequest,
    SiteKeyVisit,
    dump,
)
from gateway.rules.engine import Changes
from gateway.store import device_records as sync_store
from gateway.sync.images import PlannedImage, plan_key_image
from gateway.sync.station import (
    key_blacklists,
    record_key_confirmed,
    record_key_failed,
    record_key_visit,
)

if TYPE_CHECKING:
    from gateway.agent.hub import SiteHub

log = logging.getLogger(__name__)

REFUSAL_LOG_S = 3600.0
"""A site's agent asks again every few seconds while it waits: the refusal of one key to one
site is logged once in this long (each refusal is counted in ``KeyHub.refused``)."""

KEY_TOPICS = ("site_key_request", "site_key_visit", "site_key_confirm", "site_key_failed")
"""The site topics the hub reads for key stations."""
MAX_BATCH = 200
VISIT_WAIT_S = 2.0
"""How long a request for a key that has not visited the site waits for that visit (sent
before the request, applied by the hub in its own batch) before it is refused. Below the
agent's default ``agent.key_wait_s`` (3 s)."""
MAX_FAILURES = 10_000
"""Failed key writes of agents before store ids the hub remembers having applied (see
:meth:`KeyHub._apply_failed`)."""

KeyReport = SiteKeyVisit | SiteKeyConfirm | SiteKeyFailed | SiteEvent


class KeyHub:
    """The key-station part of a :class:`~gateway.agent.hub.SiteHub`."""

    def __init__(self, hub: SiteHub) -> None:
        self.hub = hub
        self.cached: dict[str, dict[str, frozenset[str]]] = {}
        """Site -> key serial -> the cylinders of the image last sent (the keys it caches)."""
        self.holders: dict[str, set[str]] = {}
        """Key serial -> the sites that cache it."""
        self.by_cylinder: dict[str, set[str]] = {}
        """Cylinder -> the cached keys whose image last sent opened it."""
        self.versions: dict[str, int] = {}
        self.station_owner: dict[str, str] = {}
        self.due: dict[str, set[str]] = {}
        """Site -> keys whose image must be sent."""
        self.visited: dict[str, set[str]] = {}
        """Site -> keys known to have visited one of its stations (applied visits, and those
        found in the store)."""
        self.parked: dict[str, dict[str, float]] = {}
        """Site -> key -> until when (monotonic) a request waits for the key's visit."""
        self.visit_wait_s = VISIT_WAIT_S
        """How long a request waits for the key's visit (:data:`VISIT_WAIT_S`)."""
        self.refused = 0
        """Requests refused (a key that never visited the site)."""
        self._refusal_logged: dict[tuple[str, str], float] = {}
        """(site, key) -> when (monotonic) its refusal was last logged."""
        self._wake = asyncio.Event()
        self._reports: asyncio.Queue[KeyReport] = asyncio.Queue()
        self._failures: dict[tuple[str, str, str, datetime], None] = {}
        """Failed writes without a store id applied (site, station, key, when), newest last:
        a redelivered one whose key has no job to tell (:func:`record_key_failed`) is
        recognised here while the hub runs."""

    # ------------------------------------------------------------------ hooks of the hub

    def received(self, key: str, site: str, raw: bytes) -> bool:
        """Handle a message of a key topic (returns False for other topics)."""
        if key not in KEY_TOPICS:
            return False
        try:
            match key:
                case "site_key_request":
                    self._requested(SiteKeyRequest.model_validate_json(raw), site)
                case "site_key_visit":
                    self._report(SiteKeyVisit.model_validate_json(raw), site)
                case "site_key_failed":
                    self._report(SiteKeyFailed.model_validate_json(raw), site)
                case _:
                    self._report(SiteKeyConfirm.model_validate_json(raw), site)
        except ValidationError as exc:
            first = exc.errors()[0]
            log.warning(
                "site hub: malformed %s from site %s refused: %s: %s",
                key,
                site,
                ".".join(str(x) for x in first["loc"]),
                first["msg"],
            )
        return True

    def on_changes(self, changes: Changes) -> None:
        """Queue new images of cached keys whose desired state, or the blacklist of a
        cylinder they open, changed."""
        serials = {n for n in changes.credentials if n in self.holders}
        for cylinder in changes.cylinders:
            serials |= self.by_cylinder.get(cylinder, set())
        for serial in serials:
            for site in self.holders.get(serial, ()):
                self.due.setdefault(site, set()).add(serial)
                self._wake.set()

    def station_event(self, event: SiteEvent, site: str) -> bool:
        """Take a site's ``availability`` event about one of its stations (a device that is
        no controller to the hub, see :meth:`SiteHub.is_controller`); returns False for the
        hub's own events."""
        if (
            event.kind != "availability"
            or site not in self.hub.sites
            or self.hub.is_controller(site, event.controller)
        ):
            return False
        self._report(event, site)
        return True

    def disconnected(self) -> None:
        """Reports not acknowledged are sent again by their agents."""
        self._reports = asyncio.Queue()

    async def serve(self, client: aiomqtt.Client) -> None:
        """Publish due images and apply reports until cancelled (with the connection) or the
        link is lost; never raises (the hub reconnects when its link breaks)."""
        lost = False
        while not lost:
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._publisher(client), name="lockgate-sites-keys-publish")
                    group.create_task(self._applier(client), name="lockgate-sites-keys-apply")
            except* aiomqtt.MqttError as failed:
                log.warning("site hub: key stations lost the link: %s", failed.exceptions[0])
                lost = True
            except* Exception:
                # not acknowledged: the agents send their reports again
                log.exception("site hub: serving key stations failed; again in 1 s")
            if not lost:
                await asyncio.sleep(1.0)

    # ------------------------------------------------------------------ down: planned images

    def _requested(self, request: SiteKeyRequest, site: str) -> None:
        if request.site != site:
            log.warning(
                "site hub: key request of %s published on site %s ignored", request.site, site
            )
            return
        if request.station is not None and not self._station_of(site, request.station):
            return
        self.due.setdefault(site, set()).update(request.serials)
        self._wake.set()

    async def _publisher(self, client: aiomqtt.Client) -> None:
        gateway = self.hub.gateway
        assert gateway is not None
        while True:
            if self.parked:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.25):
                        await self._wake.wait()
                self._refuse_expired()
            else:
                await self._wake.wait()
            self._wake.clear()
            due, self.due = self.due, {}
            if not due:
                continue
            try:
                unknown = {
                    site: {n for n in serials if not self._allowed(site, n)}
                    for site, serials in due.items()
                }
                found = await gateway.call(
                    gateway.core.transaction, partial(self._stored_visits, unknown=unknown)
                )
                for site, serials in found.items():
                    self.visited.setdefault(site, set()).update(serials)
                due = self._park(due)
                serials = set().union(*due.values()) if due else set()
                if not serials:
                    continue
                planned = await gateway.call(
                    gateway.core.transaction, partial(self._plan, serials=serials)
                )
                docs = self._documents(due, planned)
                # revoking images first, handed to the client in this order
                docs.sort(key=lambda d: not d.revoking)
                await publish_all(
                    client,
                    [(self.hub.topics.site("site_key_image", d.site), dump(d)) for d in docs],
                    "lockgate-sites-key-image",
                )
            except aiomqtt.MqttError:
                raise
            except Exception:
                log.exception("site hub: planning key images failed; retrying at the next wake")
                for site, serials in due.items():
                    self.due.setdefault(site, set()).update(serials)
                continue
            self.hub.messages_out += len(docs)

    def _allowed(self, site: str, serial: str) -> bool:
        """Whether ``site`` may have key ``serial``'s image (by what the hub remembers)."""
        return serial in self.visited.get(site, ()) or serial in self.cached.get(site, {})

    def _stored_visits(self, s: Session, *, unknown: dict[str, set[str]]) -> dict[str, set[str]]:
        """On the core thread: which of the keys asked visited the asking site (the store)."""
        return {
            site: sync_store.site_key_visits(s, site, serials) for site, serials in unknown.items()
        }

    def _park(self, due: dict[str, set[str]]) -> dict[str, set[str]]:
        """Keep out of ``due`` the keys that did not visit the site asking: they wait for the
        visit (up to :data:`VISIT_WAIT_S`). Returns what may be answered."""
        out: dict[str, set[str]] = {}
        until = time.monotonic() + self.visit_wait_s
        for site, serials in due.items():
            for serial in serials:
                if self._allowed(site, serial):
                    out.setdefault(site, set()).add(serial)
                else:
                    self.parked.setdefault(site, {}).setdefault(serial, until)
        return out

    def _refuse_expired(self) -> None:
        """Refuse the requests whose key's visit did not come in time: logged, answered with
        nothing."""
        now = time.monotonic()
        for site, waiting in list(self.parked.items()):
            for serial, until in list(waiting.items()):
                if until <= now:
                    del waiting[serial]
                    self.refused += 1
                    last = self._refusal_logged.get((site, serial))
                    if last is not None and now - last < REFUSAL_LOG_S:
                        continue
                    if len(self._refusal_logged) >= 10000:
                        self._refusal_logged.clear()
                    self._refusal_logged[(site, serial)] = now
                    log.warning(
                        "site hub: key image of %s refused to site %s: the key never visited "
                        "a station of the site (not logged again for this key and site "
                        "within %.0f min)",
                        serial,
                        site,
                        REFUSAL_LOG_S / 60,
                    )
            if not waiting:
                del self.parked[site]

    def _visit_applied(self, site: str, serial: str) -> None:
        """A visit of ``serial`` at ``site`` is stored: a request waiting for it is answered."""
        self.visited.setdefault(site, set()).add(serial)
        waiting = self.parked.get(site)
        if waiting is not None and waiting.pop(serial, None) is not None:
            if not waiting:
                del self.parked[site]
            self.due.setdefault(site, set()).add(serial)
            self._wake.set()

    def _plan(self, s: Session, *, serials: set[str]) -> dict[str, PlannedImage | None]:
        """On the core thread: the planned image of each key (None: not registered)."""
        core = self.hub.gateway.core if self.hub.gateway else None
        assert core is not None
        now = core.clock()
        return {
            serial: plan_key_image(core.engine, serial, now, key_blacklists(s, core, serial))
            if serial in core.engine.facts.credentials
            else None
            for serial in serials
        }

    def _documents(
        self, due: dict[str, set[str]], planned: dict[str, PlannedImage | None]
    ) -> list[SiteKeyImage]:
        """The documents of the planned images for each site, remembering what each site
        caches. Versions grow per key: the wall clock in ms, above the last one sent."""
        out: list[SiteKeyImage] = []
        issued = datetime.now(UTC)
        for serial, p in sorted(planned.items(), key=lambda kv: kv[0]):
            version = max(self.versions.get(serial, 0) + 1, int(issued.timestamp() * 1000))
            self.versions[serial] = version
            cylinders = frozenset(p.cylinders) if p is not None else frozenset()
            for cylinder in cylinders:
                self.by_cylinder.setdefault(cylinder, set()).add(serial)
            for site in sorted(site for site, serials in due.items() if serial in serials):
                cache = self.cached.setdefault(site, {})
                before = cache.get(serial)
                cache[serial] = cylinders
                self.holders.setdefault(serial, set()).add(site)
                revoking = p is not None and (
                    not p.image.enabled or (before is not None and bool(before - cylinders))
                )
                out.append(
                    SiteKeyImage(
                        site=site,
                        serial=serial,
                        version=version,
                        revoking=revoking,
                        image=image_doc(p.image) if p is not None else None,
                        credential_revision=p.credential_revision if p is not None else None,
                        cylinders=list(p.cylinders) if p is not None else [],
                        lapses_at=p.lapses_at if p is not None else None,
                        blacklist_versions=dict(p.blacklists) if p is not None else {},
                        issued_at=issued,
                    )
                )
        return out

    # ------------------------------------------------------------------ up: visits, confirmations

    def _station_of(self, site: str, station: str) -> bool:
        gateway = self.hub.gateway
        if gateway is not None and any(st.id == station for st in gateway.settings.stations):
            log.warning("site hub: site %s claims station %s the core serves itself", site, station)
            return False
        owner = self.station_owner.setdefault(station, site)
        if owner != site:
            log.warning("site hub: station %s claimed by %s belongs to %s", station, site, owner)
            return False
        return True

    def _report(self, report: KeyReport, site: str) -> None:
        station = report.controller if isinstance(report, SiteEvent) else report.station
        if report.site != site or not self._station_of(site, station):
            log.warning("site hub: key report of site %s about station %s refused", site, station)
            return
        self._reports.put_nowait(report)

    async def _applier(self, client: aiomqtt.Client) -> None:
        while True:
            batch = [await self._reports.get()]
            while not self._reports.empty() and len(batch) < MAX_BATCH:
                batch.append(self._reports.get_nowait())
            done = await self._apply(batch)
            for r in done:
                if isinstance(r, SiteKeyVisit):
                    self._visit_applied(r.site, r.serial)
            acks: dict[tuple[str, str | None], list[int]] = {}
            for r in done:
                acks.setdefault((r.site, r.store), []).append(r.seq)
            await publish_all(
                client,
                [
                    (
                        self.hub.topics.site("site_ack", site),
                        dump(SiteAck(site=site, store=store, seqs=seqs)),
                    )
                    for (site, store), seqs in acks.items()
                ],
                "lockgate-sites-key-ack",
            )
            self.hub.messages_out += len(acks)

    async def _apply(self, batch: list[KeyReport]) -> list[KeyReport]:
        """Apply ``batch`` in order in one transaction; if that fails, each report alone (one
        that fails alone is logged and not acknowledged). Returns the reports applied."""
        gateway = self.hub.gateway
        assert gateway is not None
        core = gateway.core

        def apply_all(s: Session) -> None:
            for r in self.hub.applied.fresh(s, batch, core.clock()):
                if isinstance(r, SiteKeyVisit):
                    self._apply_visit(s, r)
                elif isinstance(r, SiteKeyConfirm):
                    self._apply_confirm(s, r)
                elif isinstance(r, SiteKeyFailed):
                    self._apply_failed(s, r)
                else:
                    self._apply_availability(s, r)

        try:
            await gateway.call(core.transaction, apply_all)
            self._applied_failures(batch)
            return batch
        except Exception:
            if len(batch) == 1:
                log.exception("site hub: a key report of site %s failed", batch[0].site)
                return []
        applied: list[KeyReport] = []
        for r in batch:
            applied += await self._apply([r])
        return applied

    def _apply_visit(self, s: Session, v: SiteKeyVisit) -> None:
        core = self.hub.gateway.core if self.hub.gateway else None
        assert core is not None
        sync_store.note_site_key_visit(s, v.site, v.serial, core.clock())
        record_key_visit(
            s,
            core,
            self.hub.sink,
            v.station,
            v.serial,
            key_image(v.held),
            [audit_record(r) for r in v.records],
        )

    def _apply_availability(self, s: Session, e: SiteEvent) -> None:
        core = self.hub.gateway.core if self.hub.gateway else None
        assert core is not None
        online = bool(e.online)
        reason = e.reason or ("connected" if online else "offline")
        if sync_store.set_device_status(
            s, e.controller, "station", online, reason, core.clock(), {"site": e.site}
        ):
            self.hub.sink.availability(s, e.controller, online, reason)

    def _applied_failures(self, batch: list[KeyReport]) -> None:
        """Remember the failed writes without a store id of a committed batch (the newest
        MAX_FAILURES)."""
        for r in batch:
            if isinstance(r, SiteKeyFailed) and r.store is None:
                self._failures[(r.site, r.station, r.serial, r.at)] = None
        while len(self._failures) > MAX_FAILURES:
            del self._failures[next(iter(self._failures))]

    def _apply_failed(self, s: Session, f: SiteKeyFailed) -> None:
        if f.store is None and (f.site, f.station, f.serial, f.at) in self._failures:
            return  # already applied (a redelivery with a store id is skipped before)
        record_key_failed(
            s, self.hub.sink, f.station, f.serial, outcome=f.outcome, error=f.error, at=f.at
        )

    def _apply_confirm(self, s: Session, c: SiteKeyConfirm) -> None:
        core = self.hub.gateway.core if self.hub.gateway else None
        assert core is not None
        old = sync_store.get_key(s, c.serial)
        if (
            old is not None
            and old.revision == c.revision
            and old.credential_revision == c.credential_revision
            and old.station_id == c.station
        ):
            return  # already applied
        image = KeyImage(c.serial, c.revision, c.enabled, None, None, None)
        planned = PlannedImage(
            image,
            c.credential_revision,
            tuple(c.cylinders),
            c.lapses_at,
            dict(c.blacklist_versions),
        )
        record_key_confirmed(
            s,
            core,
            self.hub.sink,
            c.station,
            planned,
            revision=c.revision,
            written=(c.bytes_sent, c.delta) if c.written else None,
            ms=c.ms,
        )


def key_filters(topic_filter: Callable[[str], str]) -> list[tuple[str, int]]:
    """The subscriptions of the key topics the hub reads."""
    return [(topic_filter(k), 1) for k in KEY_TOPICS]


__all__ = ["KEY_TOPICS", "KeyHub", "key_filters"]

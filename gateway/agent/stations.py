"""The agent's key programming stations: a worker per station (the existing drivers, through
the :class:`~drivers.base.KeyStation` contract) and the link asking the core for keys'
planned images.

A visit at an agent's station, in order:

1. read the key's image and its audit trail, queue both for the core in one SQLite
   transaction (:meth:`AgentKeys.visited`), and only then clear the trail on the key;
2. ask the core for the key's planned image (``site/<site>/key_request``) and wait up to
   ``wait_s`` for it (``site/<site>/key_image``; every image is cached per key, the newest
   version kept);
3. answered: write the planned image if the key does not open the same, verified by the
   driver, and queue the confirmation (a write that fails or is interrupted, the key pulled
   out early, is queued as a failure: the core reports ``key_programming_failed``). Not
   answered (the link or the core is away): write the cached image only when it is newer
   than what the key holds (the key holds an image the agent knows to be older, or the
   cached image disables the key), never an older one; the station's notice says that
   central updates are waiting, and so does the agent's retained state
   (``waiting_for_core``, since when) until the core answers again. The moment and the keys
   not answered are kept in the agent's state file: a restarted agent still says since when
   central updates wait, and asks for those keys again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiomqtt
from pydantic import ValidationError

from drivers.base import KeyEventKind, KeyImage, KeyRemoved, KeyStation, NoKeyInserted
from gateway.agent.device import AgentDevice
from gateway.agent.keydocs import image_doc, key_image, opens_differently, record_doc
from gateway.agent.keys import AgentKeys
from gateway.bridge.sitepayloads import SiteKeyImage, SiteKeyRequest, dump
from gateway.bridge.topics import TopicMap
from gateway.sync.worker import WorkerTiming

log = logging.getLogger(__name__)


WAIT_S = 3.0
"""How long a visit waits for the core's planned image before it serves the key from the
cache."""
WAITING = "central updates are waiting"
ANSWERED = "the core answers again"
KEPT = "waiting_for_core"
"""The state file's entry for :attr:`KeyLink.waiting_since` and :attr:`KeyLink.unanswered`."""
ASK_AGAIN_S = 5.0
"""While central updates are waiting, the agent asks the core again this often for the keys
it did not answer."""


class KeyLink:
    """Asks the core for planned key images over the agent's connection and caches every
    image the core sends (answers and pushed updates)."""

    def __init__(self, keys: AgentKeys, site: str, topics: TopicMap) -> None:
        self.keys = keys
        self.site = site
        self.topics = topics
        self.client: aiomqtt.Client | None = None
        self.refused: list[str] = []
        self._waiting: dict[str, list[asyncio.Future[SiteKeyImage]]] = {}
        self.waiting_since: datetime | None = None
        """Since when a visit got no answer from the core (None: the core answers); the
        agent's retained state carries it as ``waiting_for_core``. Kept in the state file
        with :attr:`unanswered`."""
        self.unanswered: set[str] = set()
        """Keys whose visit got no answer, asked for again until the core answers."""
        self._restore()
        self.changed = asyncio.Event()
        """Set when :attr:`waiting_since` changes (the state is published again)."""
        self.ask_again_s = ASK_AGAIN_S

    async def connected(self, client: aiomqtt.Client | None) -> None:
        """The link is up (``client``) or down (None). Up: ask for every cached key's image
        again (an update may have been missed while away)."""
        self.client = client
        if client is not None:
            await self.refresh()

    async def refresh(self) -> None:
        """Ask for the planned image of every key the agent caches."""
        serials = sorted(set(self.keys.serials()) | self.unanswered)
        for i in range(0, len(serials), 500):
            await self._ask(serials[i : i + 500], None)

    async def _ask(self, serials: list[str], station: str | None) -> bool:
        client = self.client
        if client is None:
            return False
        request = SiteKeyRequest(site=self.site, serials=serials, station=station)
        try:
            await client.publish(
                self.topics.site("site_key_request", self.site), dump(request), qos=1, timeout=2
            )
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.warning("agent of site %s: key request not sent: %s", self.site, exc)
            return False
        return True

    async def planned(self, serial: str, station: str, wait_s: float) -> SiteKeyImage | None:
        """The core's planned image of key ``serial``, or None when no answer came within
        ``wait_s`` (or the link is down)."""
        future: asyncio.Future[SiteKeyImage] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(serial, []).append(future)
        try:
            if not await self._ask([serial], station):
                self._unanswered(serial)
                return None
            async with asyncio.timeout(wait_s):
                return await future
        except TimeoutError:
            self._unanswered(serial)
            return None
        finally:
            waiting = self._waiting.get(serial, [])
            if future in waiting:
                waiting.remove(future)
            if not waiting:
                self._waiting.pop(serial, None)

    def received(self, raw: bytes) -> SiteKeyImage | None:
        """A planned image from the core: cache it (if newer) and hand it to a visit waiting
        for it. A malformed one or one for another site is refused with the reason logged."""
        try:
            doc = SiteKeyImage.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            msg = str(first["msg"]).removeprefix("Value error, ")
            self._refuse(f"malformed key image: {where + ': ' if where else ''}{msg}")
            return None
        if doc.site != self.site:
            self._refuse(f"site: key image for site {doc.site!r}, this is {self.site!r}")
            return None
        kept = self.keys.offer(doc)
        self._answered()
        log.info(
            "agent of site %s: key %s image version %d %s",
            self.site,
            doc.serial,
            doc.version,
            "cached" if kept else "not newer than the cached one",
        )
        for future in self._waiting.pop(doc.serial, []):
            if not future.done():
                future.set_result(doc)
        return doc

    def _unanswered(self, serial: str) -> None:
        if serial in self.unanswered and self.waiting_since is not None:
            return
        self.unanswered.add(serial)
        if self.waiting_since is None:
            self.waiting_since = datetime.now(UTC)
            self.changed.set()
        self._keep()

    def _answered(self) -> None:
        """The core sent an image: it answers again."""
        if self.waiting_since is None and not self.unanswered:
            return
        self.unanswered.clear()
        if self.waiting_since is not None:
            self.waiting_since = None
            self.changed.set()
        self._keep()

    def _keep(self) -> None:
        """Keep :attr:`waiting_since` and :attr:`unanswered` in the state file."""
        since = self.waiting_since
        self.keys.store.remember(
            KEPT,
            None
            if since is None
            else json.dumps({"since": since.isoformat(), "keys": sorted(self.unanswered)}),
        )

    def _restore(self) -> None:
        """Since when central updates waited, and for which keys, before a restart."""
        kept = self.keys.store.remembered(KEPT)
        if kept is None:
            return
        try:
            body = json.loads(kept)
            since = datetime.fromisoformat(body["since"])
            keys = {str(k) for k in body["keys"]}
        except (ValueError, KeyError, TypeError):
            log.warning(
                "agent of site %s: unreadable %s in the state file ignored", self.site, KEPT
            )
            return
        self.waiting_since, self.unanswered = since, keys

    async def watch(self, publish: Callable[[str], Awaitable[None]]) -> None:
        """While connected: ``publish(reason)`` the agent's state again whenever central
        updates start or stop waiting, and while they wait ask the core again every
        :attr:`ask_again_s` for the keys it did not answer. Runs until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(
                    self.ask_again_s if self.waiting_since is not None else None
                ):
                    await self.changed.wait()
            if self.changed.is_set():
                self.changed.clear()
                await publish(WAITING if self.waiting_since is not None else ANSWERED)
            elif self.unanswered:
                await self._ask(sorted(self.unanswered)[:500], None)

    def _refuse(self, reason: str) -> None:
        self.refused.append(reason)
        log.warning("agent of site %s refused a key image: %s", self.site, reason)


@dataclass
class StationVisit:
    """One key at an agent's station."""

    serial: str
    station: str
    outcome: str = "pending"
    """written | up_to_date | kept (the key may hold newer) | waiting (no image known) |
    unknown (not registered) | pulled | failed"""
    asked: bool = False
    """The agent asked the core for the key's planned image."""
    answered: bool = False
    """The core answered with the planned image (False: served from the cache, if at all)."""
    version: int | None = None
    notice: str = ""
    error: str | None = None
    records: int = 0
    started: float = field(default_factory=time.perf_counter)


class AgentStationWorker(AgentDevice):
    """Serves one wall-mounted :class:`~drivers.base.KeyStation` at the site."""

    kind = "station"
    task_prefix = "lockgate-agent-station"

    def __init__(
        self,
        keys: AgentKeys,
        link: KeyLink,
        device_id: str,
        driver_factory: Callable[[], KeyStation],
        *,
        timing: WorkerTiming | None = None,
        on_outbox: Callable[[], None] = lambda: None,
        wait_s: float = WAIT_S,
    ) -> None:
        super().__init__(keys.store, device_id, timing, on_outbox)
        self.keys = keys
        self.link = link
        self.driver_factory = driver_factory
        self.wait_s = wait_s
        self.notice = ""
        """What the station tells the person at it about the last visit (``central updates
        are waiting`` while the core did not answer)."""
        self.visits: list[StationVisit] = []

    async def serve(self) -> None:
        driver = self.driver_factory()
        try:
            await self.guarded("connecting", driver.open())
            self._availability(True, "connected")
            async for event in driver.events():
                if event.kind is KeyEventKind.INSERTED:
                    self.visits.append(await self.visit(driver, event.serial))
        finally:
            await driver.close()

    async def visit(self, driver: KeyStation, serial: str) -> StationVisit:
        """Serve the key just inserted (see the module docstring)."""
        visit = StationVisit(serial, self.device_id)
        try:
            held = await self.guarded("reading the key", driver.read_key())
            records = await self.guarded("reading the audit trail", driver.read_audit())
        except (KeyRemoved, NoKeyInserted) as exc:
            visit.outcome, visit.error = "pulled", str(exc)
            return visit
        self.keys.visited(
            self.device_id,
            serial,
            image_doc(held).model_dump(mode="json"),
            [record_doc(r).model_dump(mode="json") for r in records],
            datetime.now(UTC),
        )
        self.on_outbox()
        visit.records = len(records)
        if records:
            try:
                await self.guarded("clearing the audit trail", driver.clear_audit(len(records)))
            except KeyRemoved as exc:
                # stored already: the next visit reads the records again, the core keeps one
                visit.outcome, visit.error = "pulled", str(exc)
                return self._done(visit, "key pulled out early")
        visit.asked = True
        answer = await self.link.planned(serial, self.device_id, self.wait_s)
        visit.answered = answer is not None
        # answered: the core's image (the authority, even if a clock put its version below
        # the cached one); otherwise the newest cached
        doc = answer if answer is not None else self.keys.cached(serial)
        if doc is None or doc.image is None:
            visit.outcome = "waiting" if doc is None else "unknown"
            return self._done(visit, "no image known for this key" if doc is None else "")
        visit.version = doc.version
        image = key_image(doc.image)
        if not opens_differently(held, image):
            visit.outcome = "up_to_date"
            self._confirm(visit, doc, held.revision, None)
            return self._done(visit, "")
        if not visit.answered and not self._newer(doc, held):
            visit.outcome = "kept"
            return self._done(visit, "the key may hold a newer image; nothing written")
        try:
            result = await self.guarded("writing the key", driver.write_key(image))
        except KeyRemoved as exc:
            visit.outcome, visit.error = "pulled", str(exc)
            self._write_failed(visit)
            return self._done(visit, "key pulled out early: it keeps its old image")
        except Exception as exc:
            visit.outcome, visit.error = "failed", f"{type(exc).__name__}: {exc}"
            self._write_failed(visit)
            self._done(visit, f"write failed: {visit.error}")
            raise
        visit.outcome = "written"
        self._confirm(visit, doc, image.revision, (result.bytes_sent, result.delta))
        return self._done(visit, "cached image written" if not visit.answered else "")

    def _newer(self, doc: SiteKeyImage, held: KeyImage) -> bool:
        """Whether the cached image may replace what the key holds without the core: the key
        holds an image the agent knows to be of an older version, or the cached image
        disables a key that still opens something (a revocation takes priority)."""
        disables = doc.revoking or (doc.image is not None and not doc.image.enabled)
        if disables and held.enabled:
            return True
        version = self.keys.version_of(held.serial, held.revision)
        return version is not None and version < doc.version

    def _confirm(
        self,
        visit: StationVisit,
        doc: SiteKeyImage,
        revision: str,
        written: tuple[int, bool] | None,
    ) -> None:
        assert doc.image is not None
        self.keys.confirmed(
            {
                "station": self.device_id,
                "serial": doc.serial,
                "version": doc.version,
                "revision": revision,
                "written": written is not None,
                "cached": not visit.answered,
                "enabled": doc.image.enabled,
                "credential_revision": doc.credential_revision,
                "cylinders": list(doc.cylinders),
                "lapses_at": doc.lapses_at.isoformat() if doc.lapses_at else None,
                "blacklist_versions": dict(doc.blacklist_versions),
                "bytes_sent": written[0] if written else 0,
                "delta": written[1] if written else False,
                "ms": round((time.perf_counter() - visit.started) * 1000, 1),
                "at": datetime.now(UTC).isoformat(),
            }
        )
        self.on_outbox()

    def _write_failed(self, visit: StationVisit) -> None:
        """Queue for the core that writing the visit's key failed or was interrupted (the
        key keeps its old image, its job stays pending)."""
        self.keys.failed(
            {
                "station": self.device_id,
                "serial": visit.serial,
                "outcome": visit.outcome,
                "error": (visit.error or "")[:500],
                "version": visit.version,
                "cached": not visit.answered,
                "at": datetime.now(UTC).isoformat(),
            }
        )
        self.on_outbox()

    def _done(self, visit: StationVisit, detail: str) -> StationVisit:
        """Say how the visit ended: in the log and in the station's notice, with ``central
        updates are waiting`` while the core did not answer."""
        parts = [WAITING] if visit.asked and not visit.answered else []
        if detail:
            parts.append(detail)
        visit.notice = self.notice = "; ".join(parts)
        log.log(
            logging.WARNING if visit.notice else logging.INFO,
            "station %s: key %s %s%s",
            self.device_id,
            visit.serial,
            visit.outcome,
            f" ({visit.notice})" if visit.notice else "",
        )
        return visit


__all__ = ["ANSWERED", "WAITING", "AgentStationWorker", "KeyLink", "StationVisit"]

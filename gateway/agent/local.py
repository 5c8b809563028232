"""The agent's local store: one SQLite file at the site that survives restarts and WAN cuts.

It holds the last desired state the agent accepted (per controller, with the site revision),
what each controller confirmed, the event cursors, and the outbox of messages for the core
(confirmations first, then events), each kept until the core acknowledged it. Every change is
one SQLite transaction, so a message is in the outbox exactly when the state it reports is
stored.

Every outbox row is named to the core by a store id and its sequence number, and the core
applies each name once. The store id is drawn anew every time the file is opened
(:attr:`AgentStore.store_id`) and kept with each row queued under it: a file restored from a
backup (or rolled back any other way) hands out its sequence numbers again, but under a new
id, so its new reports are never taken for ones the core applied from the lost timeline,
while the rows it still holds keep the name they were first sent under (their redelivery is
recognised). Rows queued before store ids were kept per row carry the file's first id
(``meta.store``), the name they were sent under then.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.agent.parts import Assembly, PartError
from gateway.bridge.sitepayloads import ControllerDoc, SiteDesired

REVOCATION = 0
"""Outbox priority of confirmations that take access away (sent first)."""
UPDATE = 1
EVENT = 2

_SCHEMA = """
create table if not exists meta (key text primary key, value text not null);
create table if not exists desired (
    controller text primary key, revision text not null, doc text not null);
create table if not exists confirmed (
    controller text primary key, revision text not null, checksum integer not null,
    generation integer not null, credentials text not null,
    event_generation integer not null default 0, event_sequence integer not null default 0);
create table if not exists outbox (
    seq integer primary key autoincrement, priority integer not null, topic text not null,
    coalesce_key text unique, payload text not null, store text);
"""


class Refused(ValueError):
    """A desired document the agent does not accept; the message says why."""


@dataclass(frozen=True, slots=True)
class Confirmed:
    """What a controller confirmed holding."""

    revision: str
    checksum: int
    generation: int
    credentials: tuple[str, ...]
    event_generation: int
    event_sequence: int


@dataclass(frozen=True, slots=True)
class Pending:
    """One outbox message: the site topic key (``site_confirm``, ``site_events``) and its
    payload without ``site`` and ``seq``."""

    seq: int
    priority: int
    topic: str
    payload: dict[str, Any]
    store: str
    """The store id it was queued under (with ``seq``, its name to the core)."""


class AgentStore:
    """The SQLite file of one agent (thread-safe; every method is one transaction)."""

    def __init__(self, path: str | Path, site: str) -> None:
        self.path = str(path)
        self.site = site
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma synchronous=normal")
        self._db.executescript(_SCHEMA)
        columns = {r[1] for r in self._db.execute("pragma table_info(outbox)")}
        if "store" not in columns:
            # a file of a version before per-row store ids: its rows keep the file's id
            self._db.execute("alter table outbox add column store text")
        self._assembly: Assembly | None = None
        """The parts received so far of the newest document sent in parts."""
        held = self._meta("site")
        if held is None:
            with self._tx() as c:
                c.execute("insert into meta values ('site', ?)", (site,))
        elif held != site:
            raise ValueError(f"--site: the state file {self.path} belongs to site {held!r}")
        first = self._meta("store")
        if first is None:
            # made once with the file (or on the first start of a version that sends it)
            first = secrets.token_hex(16)
            with self._tx() as c:
                c.execute("insert into meta values ('store', ?)", (first,))
        self.file_id = first
        """The id made with the file: the store id of the rows queued before each row kept
        its own."""
        self.store_id = secrets.token_hex(16)
        """The store id of the rows queued from now on, new at every opening of the file:
        with an outbox sequence number it names a report to the core, so numbers handed out
        again (a new file, or this one restored from a backup) are not taken for repeats."""
        with self._tx() as c:
            c.execute(
                "insert into meta values ('run', ?) on conflict(key) do update "
                "set value = excluded.value",
                (self.store_id,),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One SQLite write transaction (for the agent's other tables, :mod:`.keys`)."""
        with self._tx() as c:
            yield c

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("begin immediate")
            try:
                yield self._db
            except BaseException:
                self._db.execute("rollback")
                raise
            self._db.execute("commit")

    def _meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("select value from meta where key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def remembered(self, key: str) -> str | None:
        """A value the agent keeps across restarts (:meth:`remember`)."""
        return self._meta(f"kept:{key}")

    def remember(self, key: str, value: str | None) -> None:
        """Keep ``value`` under ``key`` across restarts (None: forget it)."""
        with self._tx() as c:
            if value is None:
                c.execute("delete from meta where key = ?", (f"kept:{key}",))
            else:
                c.execute(
                    "insert into meta values (?, ?) on conflict(key) do update "
                    "set value = excluded.value",
                    (f"kept:{key}", value),
                )

    # ------------------------------------------------------------------ desired state

    def revision(self) -> int | None:
        """The site revision of the desired state held (None: never received one)."""
        value = self._meta("revision")
        return None if value is None else int(value)

    def desired(self, controller: str) -> ControllerDoc | None:
        with self._lock:
            row = self._db.execute(
                "select doc from desired where controller = ?", (controller,)
            ).fetchone()
        return None if row is None else ControllerDoc.model_validate_json(row[0])

    def accept(self, raw: bytes) -> SiteDesired | None:
        """Validate and store a desired document; raise :class:`Refused` (naming the field or
        the revision) and change nothing when it is malformed, for another site, not newer
        than the state held, or a delta against a revision other than the one held.

        A part of a document (``parts`` > 1) is checked the same way and kept (in memory)
        with the other parts of its revision; None until the last one arrives, then the
        whole document is stored at once. A part of a newer revision drops the parts of an
        older one; a part of an older revision than those being collected, or one that does
        not match them, is refused."""
        try:
            doc = SiteDesired.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"]) or "document"
            raise Refused(f"malformed document: {where}: {first['msg']}") from None
        if doc.site != self.site:
            raise Refused(f"site: document for site {doc.site!r}, this agent serves {self.site!r}")
        if doc.parts > 1:
            whole = self._collect(doc)
            if whole is None:
                return None
            doc = whole
        return self._store(doc)

    def _collect(self, part: SiteDesired) -> SiteDesired | None:
        """Keep ``part``; the whole document once every part of its revision is here."""
        held = self.revision()
        if held is not None and part.revision <= held:
            raise Refused(f"revision: {part.revision} is not newer than the held {held}")
        if part.base is not None and part.base != held:
            raise Refused(f"base: delta against revision {part.base}, the agent holds {held}")
        collecting = self._assembly
        if collecting is not None and part.revision < collecting.revision:
            raise Refused(
                f"part: part {part.part}/{part.parts} of revision {part.revision} came after "
                f"parts of revision {collecting.revision}"
            )
        if collecting is None or part.revision > collecting.revision:
            collecting = self._assembly = Assembly(part.revision, part.base, part.parts)
        try:
            whole = collecting.add(part)
        except PartError as exc:
            self._assembly = None
            raise Refused(f"part: {exc}") from None
        if whole is not None:
            self._assembly = None
        return whole

    def _store(self, doc: SiteDesired) -> SiteDesired:
        with self._tx() as c:
            row = c.execute("select value from meta where key = 'revision'").fetchone()
            held = None if row is None else int(row[0])
            if held is not None and doc.revision <= held:
                raise Refused(f"revision: {doc.revision} is not newer than the held {held}")
            if doc.base is not None and doc.base != held:
                raise Refused(f"base: delta against revision {doc.base}, the agent holds {held}")
            if doc.base is None:
                c.execute("delete from desired")
            for cid, cdoc in doc.controllers.items():
                c.execute(
                    "insert into desired values (?, ?, ?) on conflict(controller) do update "
                    "set revision = excluded.revision, doc = excluded.doc",
                    (cid, cdoc.revision, cdoc.model_dump_json()),
                )
            c.execute(
                "insert into meta values ('revision', ?) on conflict(key) do update "
                "set value = excluded.value",
                (str(doc.revision),),
            )
        return doc

    # ------------------------------------------------------------------ confirmations

    def confirmed(self, controller: str) -> Confirmed | None:
        with self._lock:
            row = self._db.execute(
                "select revision, checksum, generation, credentials, event_generation, "
                "event_sequence from confirmed where controller = ?",
                (controller,),
            ).fetchone()
        if row is None:
            return None
        return Confirmed(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4], row[5])

    def confirmed_revisions(self) -> dict[str, str | None]:
        with self._lock:
            rows = self._db.execute("select controller, revision from confirmed").fetchall()
        return {r[0]: (r[1] or None) for r in rows}

    def unconfirmed(self) -> set[str]:
        """The controllers whose confirmed revision is not the desired one held."""
        with self._lock:
            rows = self._db.execute(
                "select d.controller from desired d left join confirmed c "
                "on c.controller = d.controller "
                "where c.revision is null or c.revision != d.revision"
            ).fetchall()
        return {r[0] for r in rows}

    def forget(self, controller: str, generation: int) -> None:
        """The controller lost its memory (or holds something else): nothing it held counts."""
        with self._tx() as c:
            c.execute(
                "insert into confirmed values (?, '', 0, ?, '[]', ?, 0) on conflict(controller) "
                "do update set revision = '', checksum = 0, generation = excluded.generation, "
                "credentials = '[]', event_generation = excluded.event_generation, "
                "event_sequence = 0",
                (controller, generation, generation),
            )

    def confirm(
        self,
        controller: str,
        revision: str,
        checksum: int,
        generation: int,
        credentials: list[str],
        entries: int,
        ms: float,
        at: str,
    ) -> bool:
        """Record a verified write and queue its confirmation for the core (one per
        controller: a newer one replaces one not yet sent). Returns True when it takes access
        away (it is then sent before everything else)."""
        with self._tx() as c:
            row = c.execute(
                "select credentials from confirmed where controller = ?", (controller,)
            ).fetchone()
            before = set(json.loads(row[0])) if row else set()
            # replacing a revoking confirmation not yet acknowledged keeps its priority
            prior = c.execute(
                "select priority from outbox where coalesce_key = ?", (f"confirm:{controller}",)
            ).fetchone()
            revoking = bool(before - set(credentials)) or (
                prior is not None and prior[0] == REVOCATION
            )
            c.execute(
                "insert into confirmed values (?, ?, ?, ?, ?, ?, 0) on conflict(controller) do "
                "update set revision = excluded.revision, checksum = excluded.checksum, "
                "generation = excluded.generation, credentials = excluded.credentials",
                (controller, revision, checksum, generation, json.dumps(credentials), generation),
            )
            payload = {
                "controller": controller,
                "revision": revision,
                "checksum": checksum,
                "generation": generation,
                "credentials": credentials,
                "entries": entries,
                "ms": round(ms, 1),
                "at": at,
            }
            self._enqueue(
                c,
                REVOCATION if revoking else UPDATE,
                "site_confirm",
                payload,
                f"confirm:{controller}",
            )
        return revoking

    def add_events(self, controller: str, generation: int, events: list[dict[str, Any]]) -> None:
        """Queue controller events and advance the controller's event cursor."""
        if not events:
            return
        with self._tx() as c:
            for ev in events:
                self._enqueue(c, EVENT, "site_events", ev, None)
            c.execute(
                "update confirmed set event_generation = ?, event_sequence = ? "
                "where controller = ?",
                (generation, max(int(e["sequence"]) for e in events), controller),
            )

    def note(self, payload: dict[str, Any], coalesce: str | None) -> None:
        """Queue an event of the agent itself (availability, device errors)."""
        with self._tx() as c:
            self._enqueue(c, EVENT, "site_events", payload, coalesce)

    @staticmethod
    def enqueue(
        c: sqlite3.Connection,
        priority: int,
        topic: str,
        payload: dict[str, Any],
        coalesce: str | None,
    ) -> None:
        """Queue a message in transaction ``c`` (replacing an unsent one with the same
        ``coalesce`` key) under the store id of this opening of the file."""
        AgentStore._enqueue(c, priority, topic, payload, coalesce)

    @staticmethod
    def _enqueue(
        c: sqlite3.Connection,
        priority: int,
        topic: str,
        payload: dict[str, Any],
        coalesce: str | None,
    ) -> None:
        if coalesce is not None:
            c.execute("delete from outbox where coalesce_key = ?", (coalesce,))
        c.execute(
            "insert into outbox (priority, topic, coalesce_key, payload, store) "
            "values (?, ?, ?, ?, (select value from meta where key = 'run'))",
            (priority, topic, coalesce, json.dumps(payload)),
        )

    # ------------------------------------------------------------------ outbox

    def pending(self, limit: int = 200) -> list[Pending]:
        """The oldest unacknowledged messages, revocations first."""
        with self._lock:
            rows = self._db.execute(
                "select seq, priority, topic, payload, store from outbox "
                "order by priority, seq limit ?",
                (limit,),
            ).fetchall()
        return [Pending(r[0], r[1], r[2], json.loads(r[3]), r[4] or self.file_id) for r in rows]

    def waiting(self) -> int:
        with self._lock:
            return int(self._db.execute("select count(*) from outbox").fetchone()[0])

    def oldest(self) -> int | None:
        """The lowest sequence number in the outbox (None: empty). Every lower one was
        acknowledged or replaced: numbers only grow (a file restored from a backup hands
        them out again, under a new store id)."""
        with self._lock:
            row = self._db.execute("select min(seq) from outbox").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def acknowledged(self, seqs: list[int], store: str | None = None) -> int:
        """Drop what the core acknowledged (queued under store id ``store``; None: a core
        that names none); returns how many were still queued. An acknowledgement naming
        another store id (of a report from before the file was restored from a backup)
        drops nothing: the number may be queued again under the current id."""
        if not seqs:
            return 0
        with self._tx() as c:
            if store is None:
                cur = c.executemany("delete from outbox where seq = ?", [(s,) for s in seqs])
            else:
                cur = c.executemany(
                    "delete from outbox where seq = ? and coalesce(store, ?) = ?",
                    [(s, self.file_id, store) for s in seqs],
                )
            return cur.rowcount


__all__ = ["EVENT", "REVOCATION", "UPDATE", "AgentStore", "Confirmed", "Pending", "Refused"]

"""The agent's keys: the planned key images it caches (the newest version of each key the
core sent) and the outbox messages of its stations' visits, in the agent's SQLite file
(:class:`~gateway.agent.local.AgentStore`), each change one transaction.

``key_seen`` remembers which image revision belonged to which version of a key's image (every
image the core sent and every image a station wrote), so that while the core is away the
agent can tell whether the image a key holds is older than the one it caches.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.agent.local import REVOCATION, UPDATE, AgentStore
from gateway.bridge.sitepayloads import SiteKeyImage

_SCHEMA = """
create table if not exists key_cache (
    serial text primary key, version integer not null, doc text not null);
create table if not exists key_seen (
    serial text not null, revision text not null, version integer not null,
    primary key (serial, revision));
"""


class AgentKeys:
    """Planned key images and station reports of one agent."""

    def __init__(self, store: AgentStore) -> None:
        self.store = store
        with store.transaction() as c:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    c.execute(statement)

    def offer(self, doc: SiteKeyImage) -> bool:
        """Keep ``doc`` if it is newer than the image cached for its key; returns whether it
        was kept (an older or repeated version changes nothing)."""
        with self.store.transaction() as c:
            row = c.execute(
                "select version from key_cache where serial = ?", (doc.serial,)
            ).fetchone()
            if row is not None and int(row[0]) >= doc.version:
                return False
            c.execute(
                "insert into key_cache values (?, ?, ?) on conflict(serial) do update "
                "set version = excluded.version, doc = excluded.doc",
                (doc.serial, doc.version, doc.model_dump_json()),
            )
            if doc.image is not None:
                _seen(c, doc.serial, doc.image.revision, doc.version)
        return True

    def cached(self, serial: str) -> SiteKeyImage | None:
        """The newest planned image the agent holds for key ``serial``."""
        with self.store.transaction() as c:
            row = c.execute("select doc from key_cache where serial = ?", (serial,)).fetchone()
        return None if row is None else SiteKeyImage.model_validate_json(row[0])

    def serials(self) -> list[str]:
        """Every key with a cached image."""
        with self.store.transaction() as c:
            return [r[0] for r in c.execute("select serial from key_cache order by serial")]

    def version_of(self, serial: str, revision: str) -> int | None:
        """The version of key ``serial``'s image tagged ``revision``, if the agent saw it."""
        with self.store.transaction() as c:
            row = c.execute(
                "select version from key_seen where serial = ? and revision = ?",
                (serial, revision),
            ).fetchone()
        return None if row is None else int(row[0])

    def visited(
        self,
        station: str,
        serial: str,
        held: dict[str, Any],
        records: list[dict[str, Any]],
        at: datetime,
    ) -> None:
        """Queue what a key held and its audit records (before the trail is cleared on the
        key). A visit that carries cylinders' blacklist confirmations goes with the
        revocations."""
        revoking = any(r["outcome"] == "blacklist_applied" for r in records)
        payload = {
            "station": station,
            "serial": serial,
            "held": held,
            "records": records,
            "at": at.isoformat(),
        }
        with self.store.transaction() as c:
            priority = REVOCATION if revoking else UPDATE
            AgentStore.enqueue(c, priority, "site_key_visit", payload, None)

    def confirmed(self, payload: dict[str, Any]) -> None:
        """Record the image a station verified on a key and queue its confirmation (one per
        key: a newer one replaces one not yet sent). A confirmation that disables the key goes
        first, and takes the key's visits and failed writes waiting before it along, so the
        core always learns what a key held, and which writes failed, before what it was
        given."""
        priority = UPDATE if payload["enabled"] else REVOCATION
        serial = str(payload["serial"])
        with self.store.transaction() as c:
            _seen(c, serial, str(payload["revision"]), int(payload["version"]))
            c.execute(
                "update outbox set priority = min(priority, ?) "
                "where topic in ('site_key_visit', 'site_key_failed') "
                "and json_extract(payload, '$.serial') = ?",
                (priority, serial),
            )
            AgentStore.enqueue(c, priority, "site_key_confirm", payload, f"key:{serial}")

    def failed(self, payload: dict[str, Any]) -> None:
        """Queue the report of a write that failed or was interrupted at a station (one
        transaction; every failure is reported, none replaces another)."""
        with self.store.transaction() as c:
            AgentStore.enqueue(c, UPDATE, "site_key_failed", payload, None)


def _seen(c: Any, serial: str, revision: str, version: int) -> None:
    c.execute(
        "insert into key_seen values (?, ?, ?) on conflict(serial, revision) do update "
        "set version = max(version, excluded.version)",
        (serial, revision, version),
    )


__all__ = ["AgentKeys"]

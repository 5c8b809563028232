"""Key images and audit records between the drivers' types (:mod:`drivers.base`) and the site
payloads (:mod:`gateway.bridge.sitepayloads`), both ways: the agent reads keys and writes
them, the core plans images and records what keys held."""

from __future__ import annotations

from drivers.base import (
    AccessEntry,
    AuditOutcome,
    BlacklistEntry,
    HardwareSchedule,
    KeyAuditRecord,
    KeyImage,
    ScheduleWindow,
)
from gateway.bridge.sitepayloads import (
    AccessDoc,
    AuditRecordDoc,
    BlacklistDoc,
    KeyImageDoc,
    ScheduleDoc,
    WindowDoc,
)


def image_doc(image: KeyImage) -> KeyImageDoc:
    """A key image as a payload."""
    return KeyImageDoc(
        serial=image.serial,
        revision=image.revision,
        enabled=image.enabled,
        valid_from=image.valid_from,
        valid_until=image.valid_until,
        revalidate_by=image.revalidate_by,
        schedules=[
            ScheduleDoc(
                schedule_id=s.schedule_id,
                windows=[
                    WindowDoc(
                        days_mask=w.days_mask, start_minute=w.start_minute, end_minute=w.end_minute
                    )
                    for w in s.windows
                ],
            )
            for s in image.schedules
        ],
        access=[
            AccessDoc(
                cylinder=a.cylinder,
                valid_from=a.valid_from,
                valid_until=a.valid_until,
                schedule_id=a.schedule_id,
            )
            for a in image.access
        ],
        blacklists=[
            BlacklistDoc(cylinder=b.cylinder, version=b.version, serials=list(b.serials))
            for b in image.blacklists
        ],
    )


def key_image(doc: KeyImageDoc) -> KeyImage:
    """A key image payload in the driver's type."""
    return KeyImage(
        serial=doc.serial,
        revision=doc.revision,
        enabled=doc.enabled,
        valid_from=doc.valid_from,
        valid_until=doc.valid_until,
        revalidate_by=doc.revalidate_by,
        schedules=tuple(
            HardwareSchedule(
                s.schedule_id,
                tuple(ScheduleWindow(w.days_mask, w.start_minute, w.end_minute) for w in s.windows),
            )
            for s in doc.schedules
        ),
        access=tuple(
            AccessEntry(a.cylinder, a.valid_from, a.valid_until, a.schedule_id) for a in doc.access
        ),
        blacklists=tuple(
            BlacklistEntry(b.cylinder, b.version, tuple(b.serials)) for b in doc.blacklists
        ),
    )


def record_doc(r: KeyAuditRecord) -> AuditRecordDoc:
    """An audit record read from a key as a payload."""
    return AuditRecordDoc(
        sequence=r.sequence,
        at=r.at,
        cylinder=r.cylinder,
        key_serial=r.key_serial,
        outcome=r.outcome.value,
        reason=r.reason,
        blacklist_version=r.blacklist_version,
        source=r.source,
    )


def audit_record(doc: AuditRecordDoc) -> KeyAuditRecord:
    """An audit record payload in the driver's type."""
    return KeyAuditRecord(
        sequence=doc.sequence,
        at=doc.at,
        cylinder=doc.cylinder,
        key_serial=doc.key_serial,
        outcome=AuditOutcome(doc.outcome),
        reason=doc.reason,
        blacklist_version=doc.blacklist_version,
        source=doc.source,
    )


def opens_differently(held: KeyImage, new: KeyImage) -> bool:
    """True when ``new`` differs from ``held`` in what the key opens (the revision tag alone
    does not count), as :attr:`gateway.sync.station.KeyVisit.needs_write`."""
    return (
        held.enabled != new.enabled
        or held.access != new.access
        or held.valid_from != new.valid_from
        or held.valid_until != new.valid_until
        or held.schedules != new.schedules
        or held.blacklists != new.blacklists
        or held.revalidate_by != new.revalidate_by
    )


__all__ = ["audit_record", "image_doc", "key_image", "opens_differently", "record_doc"]

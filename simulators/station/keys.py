"""Virtual keys: what a CLIQ-style key carries (its image and an audit trail of bounded
capacity) and a registry of keys shared by every station and cylinder of a simulated site."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drivers.base import AuditOutcome, KeyAuditRecord, KeyImage
from drivers.serialstation.image import decode_image, encode_image, image_checksum
from drivers.serialstation.messages import MAX_SERIAL
from drivers.serialstation.wire import check_text

DEFAULT_AUDIT_CAPACITY = 1000
BLANK_REVISION = "0" * 16


def blank_image(serial: str) -> KeyImage:
    """The image of a key as delivered: inactive, no access."""
    return KeyImage(
        serial=serial,
        revision=BLANK_REVISION,
        enabled=False,
        valid_from=None,
        valid_until=None,
        revalidate_by=None,
    )


@dataclass(eq=False)
class VirtualKey:
    """One key: its canonical image (and encoding), its audit trail and where it is.

    The audit trail holds at most ``audit_capacity`` records; when full, the oldest record
    is overwritten (``audit_overwritten`` counts them) as on a real key."""

    serial: str
    audit_capacity: int = DEFAULT_AUDIT_CAPACITY
    image: KeyImage = field(init=False)
    encoded: bytes = field(init=False)
    checksum: int = field(init=False)
    audit: deque[KeyAuditRecord] = field(init=False)
    audit_overwritten: int = 0
    location: str | None = None
    """Id of the station the key is inserted in, or None."""
    _next_sequence: int = 1

    def __post_init__(self) -> None:
        check_text(self.serial, "serial", min_len=1, max_len=MAX_SERIAL)
        if not 1 <= self.audit_capacity <= 0xFFFF:
            raise ValueError("audit_capacity: must be 1..65535")
        self.audit = deque(maxlen=self.audit_capacity)
        self.store(encode_image(blank_image(self.serial)))

    def store(self, encoded: bytes, image: KeyImage | None = None) -> None:
        """Replace the image with a canonical encoding (atomically, as one assignment).
        ``image`` is the decoded ``encoded`` when the caller already decoded it."""
        if image is None:
            image = decode_image(encoded)
        if image.serial != self.serial:
            raise ValueError(f"serial: image is for key {image.serial}, not {self.serial}")
        self.image, self.encoded, self.checksum = image, encoded, image_checksum(encoded)

    def _append(self, record: KeyAuditRecord) -> None:
        if len(self.audit) == self.audit.maxlen:
            self.audit_overwritten += 1
        self.audit.append(record)

    def record_own(
        self, *, at: datetime, cylinder: int, outcome: AuditOutcome, reason: str = ""
    ) -> KeyAuditRecord:
        """Append the key's own record of a cylinder visit."""
        record = KeyAuditRecord(
            sequence=self._next_sequence,
            at=at,
            cylinder=cylinder,
            key_serial=self.serial,
            outcome=outcome,
            reason=reason,
            source="key",
        )
        self._next_sequence = self._next_sequence % 0xFFFFFFFF + 1
        self._append(record)
        return record

    def carry(self, records: Iterable[KeyAuditRecord]) -> None:
        """Store records a cylinder handed over (source ``cylinder``)."""
        for record in records:
            self._append(record)

    def clear_audit(self, count: int) -> int:
        """Erase the oldest ``count`` records (at most all of them); returns how many."""
        erased = min(count, len(self.audit))
        for _ in range(erased):
            self.audit.popleft()
        return erased

    def summary(self) -> dict[str, Any]:
        img = self.image
        return {
            "serial": self.serial,
            "revision": img.revision,
            "checksum": f"{self.checksum:08x}",
            "enabled": img.enabled,
            "valid_from": img.valid_from,
            "valid_until": img.valid_until,
            "revalidate_by": img.revalidate_by,
            "schedules": len(img.schedules),
            "access_entries": len(img.access),
            "cylinders": sorted({e.cylinder for e in img.access}),
            "blacklists": {str(b.cylinder): b.version for b in img.blacklists},
            "audit_records": len(self.audit),
            "audit_overwritten": self.audit_overwritten,
            "image_bytes": len(self.encoded),
            "location": self.location,
        }


class KeyRegistry:
    """Every virtual key of a simulated site, by serial."""

    def __init__(self) -> None:
        self._keys: dict[str, VirtualKey] = {}

    def add(self, serial: str, *, audit_capacity: int = DEFAULT_AUDIT_CAPACITY) -> VirtualKey:
        if serial in self._keys:
            raise ValueError(f"serial: key {serial} already exists")
        key = VirtualKey(serial, audit_capacity=audit_capacity)
        self._keys[serial] = key
        return key

    def get(self, serial: str) -> VirtualKey:
        try:
            return self._keys[serial]
        except KeyError:
            raise LookupError(f"serial: no key {serial!r}") from None

    def __contains__(self, serial: object) -> bool:
        return serial in self._keys

    def __iter__(self) -> Iterator[VirtualKey]:
        return iter(sorted(self._keys.values(), key=lambda k: k.serial))

    def __len__(self) -> int:
        return len(self._keys)

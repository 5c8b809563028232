"""Hypothesis strategies for messages and key images."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from drivers.base import AccessEntry, BlacklistEntry, HardwareSchedule, KeyImage, ScheduleWindow
from drivers.serialstation import messages as m
from drivers.serialstation.codes import (
    NAK_CODES,
    AuditOutcomeCode,
    AuditReason,
    AuditSource,
    ErrorCode,
    Mounting,
    WriteMode,
)
from drivers.serialstation.wire import end_to_wire, start_to_wire

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
text_chars = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
serials = st.text(text_chars, min_size=1, max_size=32)


def texts(min_size: int = 0, max_size: int = 32) -> st.SearchStrategy[str]:
    return st.text(text_chars, min_size=min_size, max_size=max_size)


audit_entries = st.builds(
    m.AuditEntry,
    sequence=u32,
    at=u32,
    cylinder=u32,
    outcome=st.sampled_from(AuditOutcomeCode),
    reason=st.sampled_from(AuditReason),
    source=st.sampled_from(AuditSource),
    blacklist_version=u32,
    key_serial=serials,
)

MESSAGE_STRATEGIES: dict[type[m.Message], st.SearchStrategy[m.Message]] = {
    m.Hello: st.builds(m.Hello, version=u8),
    m.KeyInfo: st.just(m.KeyInfo()),
    m.ReadKey: st.builds(m.ReadKey, offset=u32, length=st.integers(1, 4096)),
    m.WriteBegin: st.builds(
        m.WriteBegin,
        mode=st.sampled_from(WriteMode),
        length=st.integers(1, 0xFFFFFFFF),
        checksum=u32,
        base_checksum=u32,
    ),
    m.WriteChunk: st.builds(m.WriteChunk, offset=u32, data=st.binary(min_size=1, max_size=300)),
    m.WriteCommit: st.builds(m.WriteCommit, checksum=u32),
    m.WriteAbort: st.just(m.WriteAbort()),
    m.ReadAudit: st.builds(m.ReadAudit, index=u16, max_records=st.integers(1, 255)),
    m.ClearAudit: st.builds(m.ClearAudit, count=u16, digest=u32),
    m.KeyInsertedNotice: st.builds(m.KeyInsertedNotice, serial=serials),
    m.KeyRemovedNotice: st.builds(m.KeyRemovedNotice, serial=serials),
    m.Ack: st.just(m.Ack()),
    m.HelloReply: st.builds(
        m.HelloReply,
        version=u8,
        mounting=st.sampled_from(Mounting),
        capabilities=st.integers(0, 15),
        max_access_entries=u16,
        max_payload=st.integers(64, 4096),
        window=st.integers(1, 32),
        station_id=texts(1),
        firmware=texts(),
        key_serial=texts(),
    ),
    m.KeyInfoReply: st.builds(
        m.KeyInfoReply,
        serial=serials,
        revision=st.binary(min_size=8, max_size=8),
        checksum=u32,
        length=st.integers(1, 0xFFFFFFFF),
        audit_records=u16,
    ),
    m.KeyData: st.integers(0, 1000).flatmap(
        lambda offset: st.binary(max_size=200).flatmap(
            lambda data: st.builds(
                m.KeyData,
                checksum=u32,
                total=st.integers(offset + len(data), 0xFFFFFFFF),
                offset=st.just(offset),
                data=st.just(data),
            )
        )
    ),
    m.AuditData: st.lists(audit_entries, max_size=6).flatmap(
        lambda records: st.integers(0, 100).flatmap(
            lambda index: st.builds(
                m.AuditData,
                total=st.integers(index + len(records), 0xFFFF),
                index=st.just(index),
                records=st.just(tuple(records)),
            )
        )
    ),
    m.AuditCleared: st.builds(m.AuditCleared, erased=u16, remaining=u16),
    m.Nak: st.builds(m.Nak, code=st.sampled_from(sorted(NAK_CODES))),
    m.ErrorReply: st.builds(
        m.ErrorReply,
        code=st.sampled_from([c for c in ErrorCode if c not in NAK_CODES]),
        detail=texts(0, 64),
    ),
}

any_message = st.one_of(*MESSAGE_STRATEGIES.values())

# ------------------------------------------------------------------------------ images

instants = st.integers(1, 0xFFFFFFFE).map(lambda s: EPOCH + timedelta(seconds=s))
starts = st.none() | instants
ends = st.none() | instants

windows = (
    st.tuples(st.integers(1, 127), st.integers(0, 1439), st.integers(1, 1440))
    .filter(lambda t: t[1] < t[2])
    .map(lambda t: ScheduleWindow(*t))
)


@st.composite
def key_images(draw: st.DrawFn, serial: str | None = None, max_access: int = 40) -> KeyImage:
    """Canonical key images (sorted, whole seconds, lower-case revision)."""
    ids = draw(st.lists(st.integers(1, 254), unique=True, max_size=4))
    schedules = tuple(
        HardwareSchedule(i, tuple(draw(st.lists(windows, max_size=8)))) for i in sorted(ids)
    )
    cylinder = st.integers(1, 0xFFFFFFFF) | st.integers(1000, 1100)
    access = draw(
        st.lists(
            st.builds(
                AccessEntry,
                cylinder=cylinder,
                valid_from=starts,
                valid_until=ends,
                schedule_id=st.sampled_from([0, *ids]),
            ),
            max_size=max_access,
        )
    )
    access.sort(
        key=lambda e: (
            e.cylinder,
            start_to_wire(e.valid_from, "f"),
            end_to_wire(e.valid_until, "u"),
            e.schedule_id,
        )
    )
    blacklist_cylinders = draw(st.lists(st.integers(1, 0xFFFFFFFF), unique=True, max_size=3))
    blacklists = tuple(
        BlacklistEntry(c, draw(u32), tuple(sorted(draw(st.sets(serials, max_size=4)))))
        for c in sorted(blacklist_cylinders)
    )
    return KeyImage(
        serial=serial if serial is not None else draw(serials),
        revision=draw(st.binary(min_size=8, max_size=8)).hex(),
        enabled=draw(st.booleans()),
        valid_from=draw(starts),
        valid_until=draw(ends),
        revalidate_by=draw(ends),
        schedules=schedules,
        access=tuple(access),
        blacklists=blacklists,
    )

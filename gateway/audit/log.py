"""The audit log in the store: append, read, erase personal parts, verify the chain.

Every function takes the caller's session, so an entry commits with the change it records.
Appends read the head and write the next entry; write transactions are serialised by the store
(``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so two writers never take the
same ``seq``, and the primary key on ``seq`` would refuse it if they did. The head is
remembered within a transaction, so a batch of commands reads it once, and between the write
transactions of one process as long as no other connection can have written since
(:mod:`gateway.store.remembered`).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    and_,
    bindparam,
    event,
    exists,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from gateway.audit.chain import (
    GENESIS,
    Entry,
    Head,
    canonical,
    entry_hash,
    join_subjects,
    new_salt,
    personal_digest,
    split_subjects,
)
from gateway.store.bulk import BulkInsert
from gateway.store.remembered import read_together, remembered
from gateway.store.tables import audit_entry, audit_subject
from gateway.store.txcache import transaction_cache

MAX_ACTOR: Final = 200
MAX_ACTION: Final = 64

ERASED_ENTRIES: Final = "erased_entries"
"""The key under which an entry's ``data`` records the entries whose personal parts were
erased with it, as ``[[first, last], ...]`` runs of ``seq``: every erasure is recorded so in
the chain, and :func:`verify` tells an erasure from a removal behind the log's back."""


def seq_ranges(seqs: Iterable[int]) -> list[list[int]]:
    """Sorted numbers as ``[[first, last], ...]`` runs of consecutive numbers."""
    out: list[list[int]] = []
    for s in sorted(set(seqs)):
        if out and out[-1][1] == s - 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def _check_text(name: str, value: str, limit: int) -> str:
    if not value or len(value) > limit:
        raise ValueError(f"{name}: must be 1 to {limit} characters, got {value!r}")
    if "\x00" in value:
        raise ValueError(f"{name}: must not contain a NUL character")
    return value


_INSERT_ENTRY = BulkInsert(audit_entry)
_INSERT_SUBJECT = BulkInsert(audit_subject)
_PENDING: Final = "lockgate.audit.pending"
_HOOKED: Final = "lockgate.audit.flush-hooked"

Rows = tuple[list[dict[str, Any]], list[dict[str, Any]]]


def _pending(conn: Connection) -> Rows:
    rows: Rows | None = conn.info.get(_PENDING)
    if rows is None:
        rows = ([], [])
        conn.info[_PENDING] = rows
    return rows


def _write(conn: Connection, *_: Any) -> None:
    entry_rows, subject_rows = _pending(conn)
    if entry_rows:
        _INSERT_ENTRY.execute(conn, entry_rows)
        _INSERT_SUBJECT.execute(conn, subject_rows)
    entry_rows.clear()
    subject_rows.clear()


def _discard(conn: Connection, *_: Any) -> None:
    for rows in _pending(conn):
        rows.clear()


def flush(session: Session, *_: Any) -> None:
    """Write the entries appended in this transaction that are still buffered.

    Appends are buffered on the connection and written together (one statement for a whole
    batch of commands) before the transaction commits, before a savepoint starts, and before
    anything reads the log. A rolled back transaction or savepoint discards what was appended
    in it, exactly as if the rows had been written."""
    _write(session.connection())


_HOOKED_ENGINES: Final[weakref.WeakSet[Engine]] = weakref.WeakSet()


def _hook(session: Session) -> Connection:
    # session.connection() is what starts a savepoint that begin_nested() asked for, so the
    # connection is asked for again in each (nested) transaction; within one it is the same.
    current = session.get_nested_transaction() or session.get_transaction()
    tx = transaction_cache(session, "audit-connection")
    known: tuple[object, Connection] | None = tx.get(None)
    if known is not None and known[0] is current:
        return known[1]
    conn = session.connection()
    engine = conn.engine
    if engine not in _HOOKED_ENGINES:
        _HOOKED_ENGINES.add(engine)
        if not event.contains(engine, "savepoint", _write):
            event.listen(engine, "savepoint", _write)
            event.listen(engine, "rollback_savepoint", _discard)
            event.listen(engine, "rollback", _discard)
    session.info[_HOOKED] = True
    tx[None] = (current, conn)
    return conn


def _flush_hooked(session: Session) -> None:
    if session.info.get(_HOOKED):
        flush(session)


# A session that appended writes its buffered entries before it commits, and before anything
# reads through session.execute (SQL typed by hand), so that sees them too. One listener for
# the class: a listener per session would be set up anew in every transaction.
event.listen(Session, "before_commit", _flush_hooked)
event.listen(Session, "do_orm_execute", lambda state: _flush_hooked(state.session))


_HEAD_KEY: Final = "audit-head"
_HEAD = (
    select(audit_entry.c.seq, audit_entry.c.hash, audit_entry.c.at)
    .order_by(audit_entry.c.seq.desc())
    .limit(1)
)


def _chain_head(row: Sequence[Any]) -> tuple[int, str]:
    seq, hash_ = row
    return (0, GENESIS) if seq is None else (int(seq), hash_)


read_together(
    _HEAD_KEY,
    [
        select(audit_entry.c.seq).order_by(audit_entry.c.seq.desc()).limit(1).scalar_subquery(),
        select(audit_entry.c.hash).order_by(audit_entry.c.seq.desc()).limit(1).scalar_subquery(),
    ],
    _chain_head,
)


def _head(conn: Connection) -> Head | None:
    row = conn.execute(_HEAD).first()
    return None if row is None else Head(int(row.seq), row.hash, row.at)


def head(session: Session) -> Head | None:
    """The newest entry's (seq, hash, at), or ``None`` while the log is empty."""
    flush(session)
    return _head(session.connection())


def append(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    subjects: Sequence[str] = (),
    data: Mapping[str, Any] | None = None,
    personal: Mapping[str, Any] | None = None,
) -> Entry:
    """Append one entry and return it.

    ``subjects`` name what the entry is about by kind and id only (``credential 4000001``,
    ``person p-anna``); ``data`` must hold no personal data; ``personal`` holds what may have
    to be erased later (empty or ``None``: no personal part).
    """
    row, names = _buffer(session, at, actor, action, subjects, data, personal)
    return Entry(
        seq=row["seq"],
        at=row["at"],
        actor=actor,
        action=action,
        subject=row["subject"],
        data=json.loads(row["data"]),
        personal=json.loads(row["personal"]) if row["personal"] is not None else None,
        personal_digest=row["personal_digest"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        subjects=names,
    )


def append_seq(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    subjects: Sequence[str] = (),
    data: Mapping[str, Any] | None = None,
    personal: Mapping[str, Any] | None = None,
) -> int:
    """Append one entry as :func:`append` does and return only its ``seq`` (for callers
    that append many and read none back)."""
    row, _ = _buffer(session, at, actor, action, subjects, data, personal)
    seq: int = row["seq"]
    return seq


def _buffer(
    session: Session,
    at: datetime,
    actor: str,
    action: str,
    subjects: Sequence[str],
    data: Mapping[str, Any] | None,
    personal: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], list[str]]:
    _check_text("actor", actor, MAX_ACTOR)
    _check_text("action", action, MAX_ACTION)
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"at: a naive datetime cannot be logged: {at.isoformat()}")
    at = at.astimezone(UTC)
    subject = join_subjects(list(subjects))
    data_text = canonical(dict(data or {}))
    personal_text = canonical(dict(personal)) if personal else None
    salt = new_salt() if personal_text is not None else None
    digest = (
        personal_digest(salt, personal_text)
        if salt is not None and personal_text is not None
        else None
    )
    cache = remembered(session)
    conn = _hook(session)
    if _HEAD_KEY not in cache:
        if _pending(conn)[0]:
            _write(conn)
        top = _head(conn)
        cache[_HEAD_KEY] = (0, GENESIS) if top is None else (top.seq, top.hash)
    last_seq, prev = cache[_HEAD_KEY]
    seq = last_seq + 1
    h = entry_hash(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        data_text=data_text,
        personal_digest=digest,
        prev_hash=prev,
    )
    entry_rows, subject_rows = _pending(conn)
    row = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "data": data_text,
        "personal": personal_text,
        "personal_salt": salt,
        "personal_digest": digest,
        "prev_hash": prev,
        "hash": h,
        "erased_at": None,
    }
    entry_rows.append(row)
    names = split_subjects(subject)
    subject_rows.extend({"seq": seq, "subject": s} for s in names)
    cache[_HEAD_KEY] = (seq, h)
    return row, names


def _entry(row: Row[Any]) -> Entry:
    return Entry(
        seq=int(row.seq),
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        data=json.loads(row.data),
        personal=json.loads(row.personal) if row.personal is not None else None,
        personal_digest=row.personal_digest,
        prev_hash=row.prev_hash,
        hash=row.hash,
        erased_at=row.erased_at,
        subjects=split_subjects(row.subject),
    )


def entries(
    session: Session,
    *,
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    after_seq: int = 0,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[Entry]:
    """Entries matching every filter given, in ``seq`` order (oldest first by default).

    ``subject`` is one subject (``credential 4000001``); ``since``/``until`` bound ``at``
    (inclusive/exclusive); ``limit`` keeps the first (or, with ``newest_first``, the newest)
    entries."""
    flush(session)
    stmt = select(audit_entry).where(audit_entry.c.seq > after_seq)
    if subject is not None:
        stmt = stmt.where(
            exists().where(
                and_(audit_subject.c.seq == audit_entry.c.seq, audit_subject.c.subject == subject)
            )
        )
    if since is not None:
        stmt = stmt.where(audit_entry.c.at >= since)
    if until is not None:
        stmt = stmt.where(audit_entry.c.at < until)
    if actor is not None:
        stmt = stmt.where(audit_entry.c.actor == actor)
    if action is not None:
        stmt = stmt.where(audit_entry.c.action == action)
    order = audit_entry.c.seq.desc() if newest_first else audit_entry.c.seq
    stmt = stmt.order_by(order)
    if limit is not None:
        stmt = stmt.limit(limit)
    found = [_entry(r) for r in session.connection().execute(stmt)]
    return sorted(found, key=lambda e: e.seq) if newest_first else found


def subjects_active_since(session: Session, subjects: Iterable[str], since: datetime) -> set[str]:
    """Which of ``subjects`` appear in an entry at or after ``since``."""
    flush(session)
    wanted = sorted(set(subjects))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.connection().execute(
            select(audit_subject.c.subject)
            .distinct()
            .join(audit_entry, audit_entry.c.seq == audit_subject.c.seq)
            .where(audit_subject.c.subject.in_(chunk), audit_entry.c.at >= since)
        )
        found |= {r.subject for r in rows}
    return found


_ERASE_ABOUT = (
    update(audit_entry)
    .where(
        audit_entry.c.personal.is_not(None),
        audit_entry.c.seq.in_(
            select(audit_subject.c.seq).where(
                audit_subject.c.subject.in_(bindparam("subjects", expanding=True))
            )
        ),
    )
    .values(
        personal=None,
        personal_salt=None,
        erased_at=bindparam("erase_at", type_=audit_entry.c.erased_at.type),
    )
    .returning(audit_entry.c.seq)
)


def erase_personal(
    session: Session,
    *,
    at: datetime,
    subjects: Iterable[str] = (),
    before: datetime | None = None,
    below_seq: int | None = None,
) -> list[int]:
    """Erase the personal part (and its salt) of the entries about any of ``subjects``, or of
    every entry older than ``before``; only entries before ``below_seq`` when it is given.
    Return the ``seq`` of each entry erased now.

    The digest and every hash stay, so the chain still verifies — once the erasure is recorded:
    the caller appends, in the same transaction and with the same ``at``, an entry whose data
    holds ``{ERASED_ENTRIES: seq_ranges(returned)}``. Without that record :func:`verify` reports
    the removed personal parts as tampering."""
    wanted = sorted(set(subjects))
    if not wanted and before is None:
        return []
    erased: list[int] = []
    # Entries appended in this transaction and still buffered are erased where they wait (as
    # if written, then updated), so an erasure does not break the batch's single insert.
    entry_rows, subject_rows = _pending(session.connection())
    if entry_rows:
        wanted_set = set(wanted)
        about = {r["seq"] for r in subject_rows if r["subject"] in wanted_set}
        for row in entry_rows:
            if row["personal"] is None or (below_seq is not None and row["seq"] >= below_seq):
                continue
            if row["seq"] in about or (before is not None and row["at"] < before):
                row.update(personal=None, personal_salt=None, erased_at=at)
                erased.append(row["seq"])
    if before is None and below_seq is None:
        # The common case (a command erasing what it names): one statement built once.
        rows = session.connection().execute(_ERASE_ABOUT, {"subjects": wanted, "erase_at": at})
        erased.extend(int(seq) for seq in rows.scalars())
        return sorted(erased)
    conditions: list[ColumnElement[bool]] = []
    if wanted:
        conditions.append(
            audit_entry.c.seq.in_(
                select(audit_subject.c.seq).where(audit_subject.c.subject.in_(wanted))
            )
        )
    if before is not None:
        conditions.append(audit_entry.c.at < before)
    target = and_(audit_entry.c.personal.is_not(None), or_(*conditions))
    if below_seq is not None:
        target = and_(target, audit_entry.c.seq < below_seq)
    erased.extend(
        int(seq)
        for seq in session.connection()
        .execute(
            update(audit_entry)
            .where(target)
            .values(personal=None, personal_salt=None, erased_at=at)
            .returning(audit_entry.c.seq)
        )
        .scalars()
    )
    return sorted(erased)


def count(session: Session) -> int:
    """How many entries the log holds."""
    flush(session)
    top = head(session)
    return 0 if top is None else top.seq


# ------------------------------------------------------------------ verification


@dataclass(frozen=True, slots=True)
class Problem:
    """The first thing wrong with the chain: the entry (``seq``) and what is wrong."""

    seq: int
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class Verification:
    """The result of :func:`verify`: entries checked, the head, and the first problem."""

    entries: int
    head: Head | None
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


ALTERED: Final = "altered"
LINK_BROKEN: Final = "link_broken"
MISSING: Final = "missing"
PERSONAL_ALTERED: Final = "personal_altered"
PERSONAL_REMOVED: Final = "personal_removed"
INDEX_ALTERED: Final = "index_altered"

BATCH: Final = 2000


def _batches(session: Session) -> Iterator[tuple[list[Row[Any]], dict[int, list[str]]]]:
    last = 0
    while True:
        rows = list(
            session.connection().execute(
                select(audit_entry)
                .where(audit_entry.c.seq > last)
                .order_by(audit_entry.c.seq)
                .limit(BATCH)
            )
        )
        if not rows:
            return
        top = int(rows[-1].seq)
        index: dict[int, list[str]] = {}
        for r in session.connection().execute(
            select(audit_subject.c.seq, audit_subject.c.subject).where(
                audit_subject.c.seq > last, audit_subject.c.seq <= top
            )
        ):
            index.setdefault(int(r.seq), []).append(r.subject)
        yield rows, index
        last = top


def check_entry(row: Row[Any], expected_seq: int, prev_hash: str) -> Problem | None:
    """The problem with one stored entry given the entry before it, if any."""
    seq = int(row.seq)
    if seq != expected_seq:
        missing = (
            f"entry {expected_seq} is missing"
            if seq == expected_seq + 1
            else f"entries {expected_seq} to {seq - 1} are missing"
        )
        return Problem(expected_seq, MISSING, f"{missing} (removed from the log)")
    recomputed = entry_hash(
        seq=seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        data_text=row.data,
        personal_digest=row.personal_digest,
        prev_hash=row.prev_hash,
    )
    if recomputed != row.hash:
        return Problem(
            seq, ALTERED, f"entry {seq} was altered: its hash does not match its content"
        )
    if row.prev_hash != prev_hash:
        return Problem(
            seq,
            LINK_BROKEN,
            f"entry {seq} does not follow entry {seq - 1}: an entry was removed, inserted or "
            "reordered before it",
        )
    if row.personal is not None:
        if row.erased_at is not None:
            return Problem(
                seq,
                PERSONAL_ALTERED,
                f"entry {seq} holds personal data although it is marked erased (altered)",
            )
        if row.personal_salt is None or row.personal_digest is None:
            return Problem(
                seq, PERSONAL_ALTERED, f"entry {seq} holds personal data without its digest"
            )
        try:
            digest = personal_digest(row.personal_salt, row.personal)
        except ValueError:
            digest = ""
        if digest != row.personal_digest:
            return Problem(
                seq,
                PERSONAL_ALTERED,
                f"entry {seq} was altered: its personal data does not match its digest",
            )
    elif row.personal_digest is None:
        if row.erased_at is not None or row.personal_salt is not None:
            return Problem(
                seq,
                PERSONAL_ALTERED,
                f"entry {seq} had no personal data but is marked as holding or erasing some",
            )
    elif row.erased_at is None:
        return Problem(
            seq,
            PERSONAL_REMOVED,
            f"entry {seq}: its personal data was removed without an erasure (tampered)",
        )
    elif row.personal_salt is not None:
        return Problem(
            seq, PERSONAL_ALTERED, f"entry {seq}: its personal data is gone but its salt is kept"
        )
    return None


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _declared(data_text: str) -> list[tuple[int, int]] | None:
    """The runs of ``seq`` an entry's data records as erased with it, or ``None``."""
    try:
        data = json.loads(data_text)
    except ValueError:
        return None
    runs = data.get(ERASED_ENTRIES) if isinstance(data, dict) else None
    if not isinstance(runs, list):
        return None
    out: list[tuple[int, int]] = []
    for run in runs:
        if (
            isinstance(run, list)
            and len(run) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) for n in run)
        ):
            out.append((run[0], run[1]))
    return out


class _Erasures:
    """The erasures the chain records: by instant, the recording entry and the runs of
    ``seq`` it erased (read once, before the walk; every recording entry is itself verified
    by the walk)."""

    def __init__(self, session: Session) -> None:
        self.by_at: dict[datetime, list[tuple[int, list[tuple[int, int]]]]] = {}
        rows = session.connection().execute(
            select(audit_entry.c.seq, audit_entry.c.at, audit_entry.c.data).where(
                audit_entry.c.data.contains(f'"{ERASED_ENTRIES}":', autoescape=True)
            )
        )
        for r in rows:
            runs = _declared(r.data)
            if runs:
                self.by_at.setdefault(_utc(r.at), []).append((int(r.seq), runs))

    def recorded(self, seq: int, erased_at: datetime) -> bool:
        """True when a later entry at ``erased_at`` records the erasure of entry ``seq``."""
        return any(
            by > seq and any(lo <= seq <= hi for lo, hi in runs)
            for by, runs in self.by_at.get(_utc(erased_at), ())
        )


def verify(session: Session) -> Verification:
    """Walk the whole chain: recompute every hash, check every link and ``seq``, the personal
    parts still present against their digests, every removed personal part against the entry
    that records its erasure (:data:`ERASED_ENTRIES`), and the subject index against the
    entries.

    Stops at the first problem. What verification alone cannot see: entries cut off the *end*
    of the log; compare the head with an anchor for that (:mod:`gateway.audit.anchor`)."""
    flush(session)
    erasures = _Erasures(session)
    prev = GENESIS
    expected = 1
    last: Head | None = None
    for rows, index in _batches(session):
        for row in rows:
            problem = check_entry(row, expected, prev)
            erased = row.personal_digest is not None and row.erased_at is not None
            if problem is None and erased and not erasures.recorded(int(row.seq), row.erased_at):
                problem = Problem(
                    int(row.seq),
                    PERSONAL_REMOVED,
                    f"entry {row.seq}: its personal data was removed, but no entry records "
                    "that erasure (tampered)",
                )
            if problem is not None:
                return Verification(expected - 1, last, problem)
            seq = int(row.seq)
            if sorted(index.get(seq, [])) != sorted(split_subjects(row.subject)):
                return Verification(
                    expected - 1,
                    last,
                    Problem(
                        seq,
                        INDEX_ALTERED,
                        f"entry {seq}: the subject index does not match the entry (altered)",
                    ),
                )
            prev = row.hash
            expected = seq + 1
            last = Head(seq, row.hash, row.at)
    return Verification(expected - 1, last)


__all__ = [
    "ALTERED",
    "ERASED_ENTRIES",
    "INDEX_ALTERED",
    "LINK_BROKEN",
    "MISSING",
    "PERSONAL_ALTERED",
    "PERSONAL_REMOVED",
    "Problem",
    "Verification",
    "append",
    "append_seq",
    "check_entry",
    "count",
    "entries",
    "erase_personal",
    "head",
    "seq_ranges",
    "subjects_active_since",
    "verify",
]

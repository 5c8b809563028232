"""The dashboard's job summary counts in SQL what the sync engine's job list holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.store import device_records, migrate
from gateway.store.database import Database
from gateway.web.views import MEMO_S, job_summary, memo


def test_job_summary_counts_every_priority(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    migrate.upgrade(url)
    db = Database(url)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        with db.session() as s:
            for i, (kind, priority) in enumerate(
                [
                    ("key", 0),
                    ("key", 1),
                    ("key", 2),
                    ("key", 2),
                    ("controller", 0),
                    ("controller", 1),
                ]
            ):
                device_records.put_job(s, kind, f"t{i}", "rev", priority, t0 + timedelta(i))
        with db.session(readonly=True) as s:
            summary = job_summary(s, limit=3)
            listed = device_records.jobs(s)
    finally:
        db.dispose()
    assert summary.counts[("key", True)] == (1, t0)
    assert summary.counts[("key", False)] == (3, t0 + timedelta(1))
    assert summary.counts[("controller", True)] == (1, t0 + timedelta(4))
    assert summary.counts[("controller", False)] == (1, t0 + timedelta(5))
    assert [j.target_id for j in summary.first] == [j.target_id for j in listed[:3]]


class _FakeCore:
    def __init__(self) -> None:
        self.journal_seq = 1
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def clock(self) -> datetime:
        return self.now


def test_memo_follows_facts_time_and_settling() -> None:
    core = _FakeCore()
    calls: list[int] = []

    def make() -> int:
        calls.append(core.journal_seq)
        return core.journal_seq

    def get(**kw: float | bool) -> int:
        return int(memo(core, "x", make, **kw))  # type: ignore[arg-type]

    assert get(settle_s=60.0) == 1 and get(settle_s=60.0) == 1 and len(calls) == 1
    core.journal_seq = 2
    assert get(settle_s=60.0) == 1, "a change within the settling time is not picked up yet"
    core.now += timedelta(seconds=61)
    assert get(settle_s=60.0) == 2
    core.now += timedelta(seconds=MEMO_S)
    assert get(settle_s=60.0) == 2 and len(calls) == 3, "a new period recomputes"
    core.journal_seq = 3
    assert int(memo(core, "y", make, timed=False)) == 3
    core.journal_seq = 4
    assert int(memo(core, "y", make, timed=False)) == 4, "without settling: at once"

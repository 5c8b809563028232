"""The event journal: durable, ordered, acknowledged, and readable after a torn write."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drivers.base import ControllerEventKind, DenyReason
from drivers.osdp.journal import EventJournal

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _fill(journal: EventJournal, count: int) -> None:
    for i in range(count):
        journal.add(
            ControllerEventKind.DENIED,
            credential=100 + i,
            door=1,
            at=T0,
            reason=DenyReason.OUTSIDE_SCHEDULE,
        )


def test_events_survive_a_restart_until_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    journal = EventJournal.open(path)
    _fill(journal, 3)
    assert journal.flush() == 3
    journal.ack(1)
    again = EventJournal.open(path)
    assert [e.sequence for e in again.after(0, 10)] == [2, 3]
    assert again.after(0, 10) == journal.after(0, 10)
    again.add(ControllerEventKind.TAMPER, door=2, at=T0)
    assert again.last_sequence == 4
    assert again.after(3, 10)[0].kind is ControllerEventKind.TAMPER


def test_unflushed_events_are_served_but_not_yet_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    journal = EventJournal.open(path)
    _fill(journal, 2)
    assert [e.sequence for e in journal.after(0, 10)] == [1, 2]
    assert EventJournal.open(path).after(0, 10) == []


def test_sequences_keep_growing_after_everything_is_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    journal = EventJournal.open(path)
    _fill(journal, 2)
    journal.ack(2)
    reopened = EventJournal.open(path)
    assert reopened.after(0, 10) == []
    assert reopened.add(ControllerEventKind.DENIED, door=1, at=T0).sequence == 3


def test_a_torn_last_line_and_a_bad_line_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "events.jsonl"
    journal = EventJournal.open(path)
    _fill(journal, 3)
    journal.flush()
    lines = path.read_text().splitlines()
    lines[1] = '{"seq": "two"'
    path.write_text("\n".join(lines) + "\n" + '{"seq": 4, "kind": "gra')
    with caplog.at_level(logging.WARNING):
        reopened = EventJournal.open(path)
    assert [e.sequence for e in reopened.after(0, 10)] == [1, 3]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "torn last line" in messages
    assert "line 2 skipped" in messages


def test_acknowledging_beyond_the_last_event_is_refused(tmp_path: Path) -> None:
    journal = EventJournal.open(tmp_path / "events.jsonl")
    _fill(journal, 2)
    with pytest.raises(ValueError, match="up_to_sequence: 5 is beyond the last event"):
        journal.ack(5)
    assert len(journal.after(0, 10)) == 2


def test_a_full_journal_drops_the_oldest_and_says_so(tmp_path: Path) -> None:
    journal = EventJournal.open(tmp_path / "events.jsonl", capacity=3)
    _fill(journal, 5)
    assert [e.sequence for e in journal.after(0, 10)] == [3, 4, 5]
    assert journal.overflowed


def test_the_file_is_compacted_once_it_has_grown(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    journal = EventJournal.open(path, capacity=4)
    for _ in range(30):
        _fill(journal, 2)
        journal.ack(journal.last_sequence - 1)
    lines = path.read_text().splitlines()
    assert len(lines) < 2 * 4 + 64 + 3
    reopened = EventJournal.open(path, capacity=4)
    assert [e.sequence for e in reopened.after(0, 10)] == [journal.last_sequence]

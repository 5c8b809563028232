"""The sync planner: a batch of commands plans the same jobs as the commands one by one, and
reads the confirmed images of the keys it changed in one statement."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import event

from gateway.commands import model as m
from gateway.config import Settings
from gateway.core import Core, Submission
from gateway.domain import DEFAULT_TIMEZONE
from gateway.store import device_records as sync_store
from gateway.store.database import Database
from gateway.store.migrate import upgrade
from tests import sample
from tests.gateway.running import sync_core


def _today(now: datetime) -> date:
    return now.astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date()


def _core(tmp_path: Path, name: str, now: datetime) -> Core:
    """A core on its own store whose clock stands at ``now``: the two cores compared must
    derive the same states (a visitor card's window starts when it is issued)."""
    url = f"sqlite:///{tmp_path}/{name}.db"
    upgrade(url)
    settings = Settings.model_validate({"database": {"url": url}, "mqtt": {"enabled": False}})
    core, _ = sync_core(Database(url), settings, clock=lambda: now)
    core.submit_many([Submission(c, "loader") for c in sample.sample_commands(_today(now))])
    # Anna's and Cecilia's keys hold what they were last written with; Bjørn's holds more
    # than he may open now (a cylinder of the technical building); David's was never written.
    for serial, extra in (
        (sample.KEY_ANNA, ()),
        (sample.KEY_CECILIA, ()),
        (sample.KEY_BJORN_MAIN, sample.CYL_TECH[:1]),
    ):
        state = core.engine.state(serial)
        assert state is not None
        core.transaction(
            lambda s, serial=serial, state=state, extra=extra: sync_store.confirm_key(
                s,
                sync_store.KeyConfirmed(
                    serial=serial,
                    revision=f"image-{serial}",
                    credential_revision=state.revision,
                    enabled=state.enabled,
                    cylinders=(*sample.CYL_SIGNAL, *extra),
                    lapses_at=None,
                    blacklists={},
                    station_id="desk-1",
                    confirmed_at=now,
                ),
            )
        )
    core.submit_many([])  # nothing: the confirmations above leave no job to compare
    return core


def _changes(now: datetime) -> list[m.Command]:
    soon = now + timedelta(days=3)
    return [
        m.BlockId06(card_number="ID06AN0001"),  # Anna's key: a revocation
        m.UnblockId06(card_number="ID06AN0001"),  # and back: the key's state moves again
        m.BlockId06(card_number="ID06AN0001"),
        m.ChangeVisitorCard(number=sample.VISITOR_CARD, valid_until=soon),
        m.BlockId06(card_number="ID06CE0001"),  # Cecilia's
        m.UnblockId06(card_number="ID06CE0001"),
    ]


def _jobs(core: Core) -> list[tuple[str, str, int, str]]:
    with core.db.session(readonly=True) as s:
        return sorted(
            (j.target_kind, j.target_id, j.priority, j.desired_revision) for j in sync_store.jobs(s)
        )


def test_a_batch_plans_the_jobs_of_its_commands_one_by_one_reading_keys_once(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    batched, single = _core(tmp_path, "batched", now), _core(tmp_path, "single", now)
    try:
        assert _jobs(batched) == _jobs(single)
        key_reads: list[str] = []

        def count(_c: object, _cur: object, statement: str, *_: object) -> None:
            if statement.startswith("SELECT key_image."):
                key_reads.append(statement)

        event.listen(batched.db.engine, "before_cursor_execute", count)
        try:
            outcomes = batched.submit_many([Submission(c, "central") for c in _changes(now)])
        finally:
            event.remove(batched.db.engine, "before_cursor_execute", count)
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]
        for command in _changes(now):
            (outcome,) = single.submit_many([Submission(command, "central")])
            assert outcome.ok, outcome.error
        assert len(key_reads) == 1
        jobs = _jobs(batched)
        assert jobs == _jobs(single)
        assert ("key", sample.KEY_ANNA, sync_store.REVOCATION) in {j[:3] for j in jobs}
    finally:
        batched.db.dispose()
        single.db.dispose()

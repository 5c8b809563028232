"""The anchor service and the audit wiring inside a running gateway."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy.orm import Session

from gateway.audit import log as audit_log
from gateway.audit.anchor import Anchor, AnchorService, check_anchors, read_anchors
from gateway.audit.listeners import CommandLog
from gateway.auth.authorizer import Authorizer
from gateway.charges import ChargeRecorder
from gateway.commands import model as m
from gateway.compose import build_core
from gateway.config import Settings
from gateway.core import Submission
from gateway.reviews import ReviewRecorder
from gateway.runtime import CommitNotifier, Gateway
from gateway.store.database import Database
from tests import sample
from tests.gateway.audit.util import LOADER, NOW, Clock, add_operator


def test_every_core_built_has_each_audit_listener_once_and_the_authorizer(
    db: Database,
) -> None:
    core = build_core(Settings(), db=db, authenticated={"kari"}, sync=False)
    kinds = [type(listener) for listener in core.listeners]
    assert kinds.count(CommandLog) == kinds.count(ChargeRecorder) == kinds.count(ReviewRecorder)
    assert kinds.count(CommandLog) == 1
    assert isinstance(core.authorizer, Authorizer)
    assert core.authorizer.authenticated == frozenset({"kari"})


async def test_the_service_anchors_the_head_when_it_moves(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "anchors" / "audit.jsonl"
    published: list[Anchor] = []

    def publish(session: Session, anchor: Anchor) -> int:
        published.append(anchor)
        return len(published)

    notifier = CommitNotifier()
    core = build_core(Settings(), db=db, clock=Clock(NOW), sync=False, listeners=[notifier])
    add_operator(db, LOADER, "system")
    service = AnchorService(every_s=0.05, path=path, publish=publish)
    gateway = Gateway(Settings(), core, notifier=notifier, services=[service], upgrade=False)
    await gateway.start()
    try:
        await gateway.call(
            core.submit, Submission(m.BlockId06(card_number="ID06AN0001"), LOADER)
        )  # refused (no such card yet), logged all the same
        deadline = time.monotonic() + 10
        while not path.exists():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # several intervals: the head did not move
        assert len(read_anchors(path)) == 1
        await gateway.call(
            core.submit_many,
            [Submission(c, LOADER) for c in sample.sample_commands(NOW.date())[:3]],
        )
        while len(read_anchors(path)) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    finally:
        await gateway.stop()
    anchors = read_anchors(path)
    assert [a.seq for a in anchors] == [1, 4]
    assert len(published) == 2
    assert published[-1].seq == 4 and published[-1].hash == anchors[-1].hash
    with db.session(readonly=True) as s:
        assert check_anchors(s, anchors) is None
        assert audit_log.verify(s).ok

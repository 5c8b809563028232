"""The lease and the fencing token at store level, on a real PostgreSQL: one holder at a
time, a token that grows at every change of holder, and a deposed leader's write refused
before it changes anything."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from gateway.bridge.retry import transient
from gateway.commands import model as m
from gateway.core import Core, Submission
from gateway.domain.facts import Competence, Person
from gateway.leadership import LeaseStore
from gateway.store import migrate, tables
from gateway.store.database import Database
from gateway.store.fencing import Fence, is_fenced_out

pytestmark = pytest.mark.postgres


@pytest.fixture
def url(pg_url: str) -> str:
    migrate.upgrade(pg_url)
    return pg_url


@pytest.fixture
def leases(url: str) -> Iterator[tuple[LeaseStore, LeaseStore]]:
    a = LeaseStore(url, lease_s=1.0, lock_timeout_s=0.3)
    b = LeaseStore(url, lease_s=1.0, lock_timeout_s=0.3)
    try:
        yield a, b
    finally:
        a.dispose()
        b.dispose()


A = "a" * 32
B = "b" * 32


def test_one_holder_at_a_time_and_a_larger_token_at_every_change(
    leases: tuple[LeaseStore, LeaseStore],
) -> None:
    a, b = leases
    assert a.read() is None
    first = a.acquire(A, "host-a")
    assert first is not None and first.token == 1 and first.holder == A
    assert b.acquire(B, "host-b") is None, "the lease is held and not expired"
    assert a.renew(first.token) is not None
    time.sleep(1.2)  # no renewal for longer than lease_s
    second = b.acquire(B, "host-b")
    assert second is not None and second.token == 2 and second.holder == B
    assert a.renew(first.token) is None, "the deposed holder cannot renew"
    assert not a.release(first.token), "nor release another's lease"
    assert b.release(second.token)
    third = a.acquire(A, "host-a")
    assert third is not None and third.token == 3, "a released lease is free at once"
    seen = b.read()
    assert seen is not None and (seen.holder, seen.token, seen.expired) == (A, 3, False)


def test_the_lease_records_where_the_holders_console_is(
    leases: tuple[LeaseStore, LeaseStore],
) -> None:
    a, b = leases
    first = a.acquire(A, "host-a", "https://core-a.example.com/")
    assert first is not None and first.console_url == "https://core-a.example.com/"
    renewed = a.renew(first.token)
    assert renewed is not None and renewed.console_url == "https://core-a.example.com/"
    seen = b.read()
    assert seen is not None and (seen.holder, seen.console_url) == (
        A,
        "https://core-a.example.com/",
    )
    assert a.release(first.token)
    second = b.acquire(B, "host-b", "http://10.0.0.12:8080/")
    assert second is not None and second.console_url == "http://10.0.0.12:8080/"
    assert b.release(second.token)
    third = a.acquire(A, "host-a")  # a core without a console, or without a known address
    assert third is not None and third.console_url is None, "never the previous holder's URL"
    seen = b.read()
    assert seen is not None and (seen.holder, seen.console_url) == (A, None)


def _core(db: Database) -> Core:
    core = Core(db)
    core.load()
    return core


def _put(core: Core, code: str, request_id: str) -> None:
    core.submit(
        Submission(
            m.PutCompetence(
                competence=Competence(
                    person_id="p1", code=code, valid_until=date.today() + timedelta(days=30)
                )
            ),
            "system",
            request_id=request_id,
        )
    )


def _counts(url: str) -> tuple[int, int]:
    db = Database(url)
    try:
        with db.session(readonly=True) as s:
            journal = s.execute(select(func.count()).select_from(tables.fact_journal)).scalar_one()
            inbox = s.execute(select(func.count()).select_from(tables.inbox)).scalar_one()
        return int(journal), int(inbox)
    finally:
        db.dispose()


def test_a_deposed_leader_cannot_write_and_is_told(
    url: str, leases: tuple[LeaseStore, LeaseStore]
) -> None:
    a, b = leases
    held = a.acquire(A, "host-a")
    assert held is not None
    fenced: list[int] = []
    db = Database(url)
    db.set_fence(Fence(held.token, on_fenced=lambda: fenced.append(1)))
    try:
        core = _core(db)
        core.submit(
            Submission(m.PutPerson(person=Person(id="p1", first_name="A", last_name="B")), "system")
        )
        _put(core, "C1", "r1")
        before = _counts(url)
        time.sleep(1.2)
        taken = b.acquire(B, "host-b")
        assert taken is not None and taken.token == held.token + 1
        with pytest.raises(OperationalError) as caught:
            _put(core, "C2", "r2")
        assert is_fenced_out(caught.value)
        assert transient(caught.value), "the request pipeline must retry it, not answer it"
        assert "fenced out" in str(caught.value)
        assert fenced, "the fence's on_fenced was called"
        assert _counts(url) == before, "nothing of the refused transaction was written"
        # The new holder's token writes.
        db.set_fence(Fence(taken.token))
        _put(core, "C2", "r2")
        assert _counts(url)[1] == before[1] + 1
    finally:
        db.dispose()


def test_an_unfenced_writer_is_not_checked(url: str, leases: tuple[LeaseStore, LeaseStore]) -> None:
    """Command-line commands write without a fence, whoever leads."""
    a, _ = leases
    assert a.acquire(A, "host-a") is not None
    db = Database(url)
    try:
        core = _core(db)
        core.submit(
            Submission(m.PutPerson(person=Person(id="p1", first_name="A", last_name="B")), "system")
        )
    finally:
        db.dispose()


def test_the_lease_changes_hands_only_after_a_write_under_way_commits(
    url: str, leases: tuple[LeaseStore, LeaseStore]
) -> None:
    a, b = leases
    held = a.acquire(A, "host-a")
    assert held is not None
    db = Database(url)
    db.set_fence(Fence(held.token))
    time.sleep(1.2)  # the lease expired, but a write transaction of the old leader is open
    try:
        with db.session() as s:
            s.execute(select(1))
            with pytest.raises(OperationalError):
                b.acquire(B, "host-b")  # waits for the write lock, gives up after 0.3 s
        taken = b.acquire(B, "host-b")
        assert taken is not None and taken.token == held.token + 1
    finally:
        db.dispose()


def test_sqlite_is_never_fenced(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        with pytest.raises(ValueError, match="fence"):
            db.set_fence(Fence(1))
    finally:
        db.dispose()
    with pytest.raises(ValueError, match="PostgreSQL"):
        LeaseStore(sqlite_url, lease_s=5, lock_timeout_s=1)

"""The workload of the kill -9 trials: an operator for the central system, one person, and
competence changes with unique request ids; and how to count what the store holds of one
trial. Shared by ``bench/reliability.py``, ``bench/failover.py`` and the failover tests."""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy import func, select

from gateway.auth import operators
from gateway.auth.passwords import hash_token, new_token
from gateway.commands import model as m
from gateway.core import Core, Submission
from gateway.domain.facts import Competence, Person
from gateway.domain.timeutil import utcnow
from gateway.store import migrate, tables
from gateway.store.database import Database


def prepare(url: str) -> None:
    """Schema, the central system's operator and the person the requests are about."""
    migrate.upgrade(url)
    db = Database(url)
    try:
        with db.session() as s:
            for name, role in (("central-system", "system"), ("trial", "administrator")):
                operators.add(
                    s,
                    name=name,
                    role=role,
                    created_by="trial",
                    token_hash=hash_token(new_token()),
                    at=utcnow(),
                )
        core = Core(db)
        core.load()
        core.submit(
            Submission(
                m.PutPerson(person=Person(id="p-trial", first_name="Trial", last_name="Person")),
                "trial",
            )
        )
    finally:
        db.dispose()


def competence(trial: str, i: int) -> bytes:
    change = m.PutCompetence(
        competence=Competence(
            person_id="p-trial",
            code=f"{trial[:6].upper()}{i:05d}",
            valid_until=date.today() + timedelta(days=30 + i % 300),
        )
    )
    return json.dumps({"request_id": f"{trial}-{i}", **change.model_dump(mode="json")}).encode()


def count_store(url: str, trial: str) -> tuple[set[str], dict[str, int]]:
    """Request ids of the trial in the inbox, and journal entries per competence of it."""
    db = Database(url)
    try:
        with db.session(readonly=True) as s:
            ids = set(
                s.execute(
                    select(tables.inbox.c.request_id).where(
                        tables.inbox.c.request_id.like(f"{trial}-%")
                    )
                ).scalars()
            )
            rows = s.execute(
                select(tables.fact_journal.c.key, func.count())
                .where(tables.fact_journal.c.kind == "Competence")
                .group_by(tables.fact_journal.c.key)
            ).all()
    finally:
        db.dispose()
    prefix = trial[:6].upper()
    applied = {json.dumps(list(k)): n for k, n in rows if any(prefix in str(p) for p in k)}
    return ids, applied

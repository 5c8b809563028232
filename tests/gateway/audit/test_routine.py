"""The visitor-card routine and lost-card fees through an audited core: expiry to the second,
erasure on return with the chain still verifying, NOK 400 for a lost employee card."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from gateway.audit import log as audit_log
from gateway.charges import charges
from gateway.commands import model as m
from gateway.core import Core, Submission
from gateway.domain import ERASED, CredentialState, VisitorReason
from gateway.domain.facts import VisitorCard
from gateway.rules import Reason
from gateway.store import fact_repository as fact_store
from gateway.store.database import Database
from tests import sample
from tests.gateway.audit.util import NOW, Clock, add_operator, audited_core

CARD = "5000042"


def issue(core: Core, until_s: float = 3600, **changes: object) -> m.IssueVisitorCard:
    fields: dict[str, object] = {
        "number": CARD,
        "holder_name": "Helga Nordmann",
        "company": "Heis og Løft AS",
        "mobile": "+4791234567",
        "sponsor_employment_id": "emp-anna",
        "reason": VisitorReason.SUPPLIER,
        "space_ids": ("sp-office",),
        "valid_until": core.clock() + timedelta(seconds=until_s),
        "confirmed_in_person": True,
        "return_duty_acknowledged": True,
    }
    fields.update(changes)
    cmd = m.IssueVisitorCard.model_validate(fields)
    core.execute(cmd, operator="desk")
    return cmd


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def core(db: Database, clock: Clock) -> Core:
    c = audited_core(db, clock)
    add_operator(db, "desk", "issuer", title="receptionist")
    return c


@pytest.mark.parametrize(
    ("missing", "field"),
    [
        ({"sponsor_employment_id": None}, "sponsor_employment_id"),
        ({"confirmed_in_person": False}, "confirmed_in_person"),
        ({"return_duty_acknowledged": None}, "return_duty_acknowledged"),
        ({"valid_until": None}, "valid_until"),
        ({"mobile": "call me"}, "mobile"),
    ],
)
def test_a_visitor_card_needs_every_field_of_the_routine(
    missing: dict[str, object], field: str
) -> None:
    base = {
        "number": CARD,
        "holder_name": "Helga Nordmann",
        "company": "Heis og Løft AS",
        "mobile": "+4791234567",
        "sponsor_employment_id": "emp-anna",
        "reason": "supplier",
        "space_ids": ["sp-office"],
        "valid_until": NOW.isoformat(),
        "confirmed_in_person": True,
        "return_duty_acknowledged": True,
    }
    with pytest.raises(ValidationError) as exc:
        m.IssueVisitorCard.model_validate({**base, **missing})
    assert exc.value.errors()[0]["loc"] == (field,)


def test_a_visitor_card_expires_to_the_second_by_itself(core: Core, clock: Clock) -> None:
    cmd = issue(core, until_s=90)
    until = cmd.valid_until
    assert core.engine.states[CARD].active
    clock.now = until - timedelta(microseconds=1)
    core.tick()
    assert core.engine.states[CARD].active
    assert CARD in {e.credential for e in core.engine.controller(sample.CONTROLLER).entries}
    clock.now = until
    changes = core.tick()
    state = core.engine.states[CARD]
    assert not state.active and state.reasons == (Reason.VISITOR_EXPIRED,)
    assert CARD in changes.credentials  # nobody acted: time did
    assert CARD not in {e.credential for e in core.engine.controller(sample.CONTROLLER).entries}


def test_returning_a_card_erases_the_holder_in_facts_and_log_and_the_chain_verifies(
    core: Core, db: Database
) -> None:
    issue(core)
    core.execute(
        m.ChangeVisitorCard(number=CARD, valid_until=NOW + timedelta(hours=5)), operator="desk"
    )
    with db.session(readonly=True) as s:
        [issued] = [
            e
            for e in audit_log.entries(s, subject=f"credential {CARD}")
            if e.action == "visitor_card_issue"
        ]
    assert issued.personal == {
        "holder_name": "Helga Nordmann",
        "company": "Heis og Løft AS",
        "mobile": "+4791234567",
    }
    digest = issued.personal_digest
    core.execute(m.ReturnVisitorCard(number=CARD), operator="desk")
    card = core.engine.facts.visitor_cards[CARD]
    assert (card.holder_name, card.company, card.mobile, card.erased) == (
        ERASED,
        ERASED,
        ERASED,
        True,
    )
    with db.session(readonly=True) as s:
        stored = fact_store.get(s, VisitorCard, CARD)
        history = audit_log.entries(s, subject=f"credential {CARD}")
        raw = s.execute(text("SELECT personal, data FROM audit_entry")).all()
        verified = audit_log.verify(s)
    assert stored is not None and stored.holder_name == ERASED
    assert [e.action for e in history] == [
        "visitor_card_issue",
        "visitor_card_change",
        "visitor_card_return",
    ]
    assert all(e.personal is None for e in history)
    assert history[0].personal_digest == digest and history[0].erased_at is not None
    assert not any("Helga" in (p or "") or "Helga" in d for p, d in raw)
    assert verified.ok, verified.problem
    assert history[-1].data["result"] == {
        "credential": CARD,
        "erased": True,
        "fee_nok": 0,
        "credentials": [CARD],
    }


def test_a_lost_employee_card_costs_400_and_a_lost_visitor_card_nothing(
    core: Core, db: Database
) -> None:
    issue(core)
    core.execute(m.ReturnVisitorCard(number=CARD, lost=True), operator="desk")
    lost = core.submit(
        Submission(
            m.ReportCredential(credential_number=sample.TAG_ANNA, outcome="lost"),
            "desk",
            request_id="lost-1",
        )
    )
    assert lost.ok and lost.data["fee_nok"] == 400
    again = core.submit(
        Submission(
            m.ReportCredential(credential_number=sample.TAG_ANNA, outcome="lost"),
            "desk",
            request_id="lost-1",
        )
    )
    assert again.duplicate
    assert core.engine.facts.credentials[sample.TAG_ANNA].state is CredentialState.LOST
    assert core.engine.states[sample.TAG_ANNA].revoked
    with db.session(readonly=True) as s:
        found = charges(s)
    assert [(c.credential, c.employment_id, c.amount_nok, c.reason, c.operator) for c in found] == [
        (sample.TAG_ANNA, "emp-anna", 400, "lost", "desk")
    ]
    assert found[0].request_id == "lost-1"


def test_a_refused_loss_records_no_charge(core: Core, db: Database) -> None:
    add_operator(db, "hr", "hr")
    out = core.submit(
        Submission(m.ReportCredential(credential_number=sample.TAG_ANNA, outcome="lost"), "hr")
    )
    assert not out.ok
    with db.session(readonly=True) as s:
        assert charges(s) == []

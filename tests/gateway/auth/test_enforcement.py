"""Roles enforced by the core on a real database: every role against every command, each
attempt logged, refusals changing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from gateway.auth import roles as r
from gateway.auth.authorizer import Authorizer
from gateway.commands import model as m
from gateway.config import MqttSettings, Settings
from gateway.core import Core, Submission
from gateway.domain import ApplicationStatus, DomainError
from gateway.rules import Reason
from gateway.store.database import Database
from gateway.store.tables import audit_entry
from tests import sample
from tests.gateway.audit.util import NOW, Clock, add_operator, audited_core, database, empty
from tests.gateway.auth.examples import example_commands


def log_count(db: Database) -> int:
    with db.session(readonly=True) as s:
        return int(s.execute(select(func.count()).select_from(audit_entry)).scalar_one())


def check_matrix(db: Database, role: str) -> None:
    core = audited_core(db, Clock())
    add_operator(db, "op", role, display_name="Karin Sjöberg")  # the sample's project manager
    for kind, command in example_commands().items():
        before = log_count(db)
        outcome = core.submit(Submission(command, "op", request_id=f"{role}-{kind.name}"))
        forbidden = outcome.error is not None and outcome.error["code"] == "FORBIDDEN"
        assert forbidden == (kind.action not in r.ROLES[role].actions), (role, kind.name)
        assert log_count(db) == before + 1  # accepted or refused, it is logged
        if forbidden:
            assert outcome.error is not None
            assert outcome.error["message"] == f"operator op (role {role}) may not {kind.action}"


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    with database(sqlite_url) as d:
        yield d


@pytest.mark.parametrize("role", sorted(r.ROLES))
def test_each_role_may_run_exactly_the_commands_its_actions_allow(
    sqlite_db: Database, role: str
) -> None:
    check_matrix(sqlite_db, role)


def test_the_role_check_holds_on_both_databases(db: Database) -> None:
    check_matrix(db, "reception")
    empty(db)
    check_matrix(db, "system")


def test_a_refused_command_changes_nothing_and_its_refusal_is_logged(db: Database) -> None:
    core = audited_core(db, Clock())
    add_operator(db, "desk", "reception")
    before = dict(core.engine.facts.visitor_cards)
    out = core.submit(
        Submission(
            m.IssueVisitorCard(
                number="5000099",
                holder_name="Helga Visitor",
                company="Lift AB",
                mobile="+4790000001",
                sponsor_employment_id="emp-anna",
                reason="supplier",
                space_ids=("sp-office",),
                valid_until=NOW + timedelta(days=1),
                confirmed_in_person=True,
                return_duty_acknowledged=True,
            ),
            "desk",
        )
    )
    assert not out.ok and out.error is not None and out.error["code"] == "FORBIDDEN"
    assert core.engine.facts.visitor_cards == before
    from gateway.audit import log as audit_log

    with db.session(readonly=True) as s:
        [entry] = audit_log.entries(s, subject="credential 5000099")
    assert entry.actor == "desk" and entry.action == "visitor_card_issue"
    assert entry.data["status"] == "refused" and entry.data["error"]["code"] == "FORBIDDEN"
    # the attempt's personal data went to the erasable part, not into data
    assert entry.personal == {
        "holder_name": "Helga Visitor",
        "company": "Lift AB",
        "mobile": "+4790000001",
    }
    assert "Helga" not in str(entry.data)


def test_reception_changes_existing_cards_but_issues_none(db: Database) -> None:
    core = audited_core(db, Clock())
    add_operator(db, "desk", "reception")
    later = NOW + timedelta(days=3)
    core.execute(
        m.ChangeVisitorCard(number=sample.VISITOR_CARD, valid_until=later), operator="desk"
    )
    assert core.engine.facts.visitor_cards[sample.VISITOR_CARD].valid_until == later
    with pytest.raises(DomainError, match="may not issue_credentials"):
        core.execute(m.RegisterTags(numbers=("4000777",)), operator="desk")


def test_hr_approval_gates_employee_cards_and_only_hr_gives_it(db: Database) -> None:
    core = audited_core(db, Clock())
    add_operator(db, "issuer", "issuer")
    add_operator(db, "hr", "hr")
    core.execute(m.RegisterTags(numbers=("4000555",)), operator="issuer")
    core.execute(
        m.HandOut(credential_number="4000555", employment_id="emp-bjorn-main"), operator="issuer"
    )
    core.execute(m.SignReceipt(credential_number="4000555"), operator="issuer")
    state = core.engine.states["4000555"]
    assert not state.active and Reason.HR_APPROVAL_MISSING in state.reasons
    with pytest.raises(DomainError, match="may not approve_employee_cards"):
        core.execute(m.ApproveEmployeeCard(credential_number="4000555"), operator="issuer")
    assert not core.engine.states["4000555"].active
    core.execute(m.ApproveEmployeeCard(credential_number="4000555"), operator="hr")
    assert Reason.HR_APPROVAL_MISSING not in core.engine.states["4000555"].reasons


def test_unknown_disabled_and_unauthenticated_operators_are_refused(db: Database) -> None:
    settings = Settings(mqtt=MqttSettings(system_operator="central"))
    core = audited_core(db, Clock(), settings=settings)
    block = m.BlockId06(card_number="ID06AN0001")
    with pytest.raises(DomainError, match="operator central is not registered; MQTT") as exc:
        core.execute(block, operator="central")
    assert exc.value.code == "FORBIDDEN"
    add_operator(db, "central", "system")
    core.execute(block, operator="central")
    from gateway.auth import operators as operator_store

    with db.session() as s:
        operator_store.change(s, "central", at=NOW, active=False)
    with pytest.raises(DomainError, match="operator central is disabled"):
        core.execute(m.UnblockId06(card_number="ID06AN0001"), operator="central")
    core = Core(core.db, listeners=core.listeners, authorizer=Authorizer(authenticated={"someone"}))
    core.load()
    with pytest.raises(DomainError, match="has not authenticated"):
        core.execute(m.UnblockId06(card_number="ID06AN0001"), operator=sample.OPERATOR)


def test_a_project_manager_decides_their_own_assignments_only(db: Database) -> None:
    core = audited_core(db, Clock())
    add_operator(db, "karin", "project_manager", display_name="Karin Sjöberg")
    add_operator(db, "per", "project_manager", display_name="Per Persson")
    app = next(
        c
        for c in sample.sample_commands(NOW.date())
        if isinstance(c, m.PutApplication) and c.application.revision == 3
    )
    decided = app.model_copy(
        update={
            "application": app.application.model_copy(
                update={"status": ApplicationStatus.APPROVED, "decided_at": NOW}
            )
        }
    )
    with pytest.raises(DomainError, match="per does not manage assignment asg-hallsberg"):
        core.execute(decided, operator="per")
    core.execute(decided, operator="karin")
    assert core.engine.facts.latest_approved["asg-hallsberg"].revision == 3

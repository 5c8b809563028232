"""Recording an access review through the core: who may, and what removal does to each kind
of credential."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.audit import log as audit_log
from gateway.commands import model as m
from gateway.commands.review import RecordAccessReview
from gateway.core import Core
from gateway.domain import ERASED, CredentialState, DomainError, VisitorReason
from gateway.reviews import last_review, reviews
from gateway.rules import Reason
from gateway.store.database import Database
from tests import sample
from tests.gateway.audit.util import NOW, Clock, add_operator, audited_core


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def core(db: Database, clock: Clock) -> Core:
    c = audited_core(db, clock)
    add_operator(db, "om", "auditor", title="Operations Manager")
    add_operator(db, "tech", "issuer", title="operations technician")
    return c


def later_card(core: Core, number: str, start_in: timedelta) -> None:
    core.execute(
        m.IssueVisitorCard(
            number=number,
            holder_name="Future Visitor",
            company="Later AS",
            mobile="+4790000002",
            sponsor_employment_id="emp-anna",
            reason=VisitorReason.NEW_EMPLOYEE,
            space_ids=("sp-office",),
            valid_from=NOW + start_in,
            valid_until=NOW + start_in + timedelta(days=3),
            confirmed_in_person=True,
            return_duty_acknowledged=True,
        ),
        operator="loader",
    )


def test_removal_revokes_each_kind_as_documented(core: Core, db: Database, clock: Clock) -> None:
    later_card(core, "5000200", timedelta(days=1))
    clock.advance(timedelta(hours=1, microseconds=250))
    data = core.execute(
        RecordAccessReview(
            remove=(sample.KEY_ERIK, sample.TAG_ANNA, sample.VISITOR_CARD, "5000200"),
            note="Erik left; Anna's tag unused",
        ),
        operator="om",
    )
    facts = core.engine.facts
    for number in (sample.KEY_ERIK, sample.TAG_ANNA):
        assert facts.credentials[number].state is CredentialState.RETURNED
        assert core.engine.states[number].reasons == (Reason.CREDENTIAL_REVOKED,)
    card = facts.visitor_cards[sample.VISITOR_CARD]
    assert card.valid_until == clock().replace(microsecond=0)  # ends now, to the second
    assert card.holder_name == "Helena Berg"  # kept until it is handed in
    assert core.engine.states[sample.VISITOR_CARD].reasons == (Reason.VISITOR_EXPIRED,)
    future = facts.visitor_cards["5000200"]
    assert future.erased and future.holder_name == ERASED  # never valid: closed and erased
    assert facts.credentials["5000200"].state is CredentialState.RETURNED
    assert data["returned"] == [sample.KEY_ERIK, sample.TAG_ANNA, "5000200"]
    assert data["visitor_cards_ended"] == [sample.VISITOR_CARD]
    assert data["credentials_listed"] == 12
    with db.session(readonly=True) as s:
        [stored] = reviews(s)
        [entry] = audit_log.entries(s, action="access_review")
    assert stored.reviewer == "om" and stored.credentials == 12
    assert stored.removed == (sample.KEY_ERIK, sample.TAG_ANNA, sample.VISITOR_CARD, "5000200")
    assert stored.note == "Erik left; Anna's tag unused"
    assert entry.personal == {"note": "Erik left; Anna's tag unused"}
    assert f"credential {sample.KEY_ERIK}" in entry.subjects


def test_only_an_administrator_or_the_operations_manager_records_it(
    core: Core, db: Database
) -> None:
    with pytest.raises(DomainError, match="tech \\(role issuer\\) may not record_access_review"):
        core.execute(RecordAccessReview(remove=(sample.KEY_ERIK,)), operator="tech")
    assert core.engine.facts.credentials[sample.KEY_ERIK].state is CredentialState.IN_SERVICE
    with db.session(readonly=True) as s:
        assert last_review(s) is None


@pytest.mark.parametrize(
    ("remove", "field", "code"),
    [
        (("999999999",), "remove.0", "NOT_FOUND"),
        ((sample.KEY_ERIK, sample.KEY_ERIK), "remove", "INVALID"),
    ],
)
def test_a_bad_removal_refuses_the_whole_review(
    core: Core, db: Database, remove: tuple[str, ...], field: str, code: str
) -> None:
    with pytest.raises(DomainError) as exc:
        core.execute(RecordAccessReview(remove=remove), operator="om")
    assert (exc.value.field, exc.value.code) == (field, code)
    with db.session(readonly=True) as s:
        assert reviews(s) == []


def test_an_already_revoked_credential_cannot_be_removed_again(core: Core) -> None:
    core.execute(RecordAccessReview(remove=(sample.KEY_ERIK,)), operator="om")
    with pytest.raises(DomainError, match="already returned") as exc:
        core.execute(RecordAccessReview(remove=(sample.KEY_ERIK,)), operator="om")
    assert exc.value.field == "remove.0"

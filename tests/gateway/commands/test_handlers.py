"""Command handlers against the sample facts (in memory): what is accepted, what is refused
and with which code and field."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.commands import CommandContext, handle
from gateway.commands import model as m
from gateway.commands.handlers import end_of_working_day
from gateway.domain import (
    CREDENTIAL_TRANSITIONS,
    ERASED,
    Credential,
    CredentialKind,
    CredentialState,
    DomainError,
    VisitorReason,
)
from gateway.rules import Reason, RulesConfig, RulesEngine
from tests import sample

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CFG = RulesConfig()


def run(engine: RulesEngine, cmd: m.Command, now: datetime = NOW) -> CommandContext:
    ctx = CommandContext(engine.facts, now, "tester", CFG, command=cmd)
    handle(ctx, cmd)
    engine.apply_many(ctx.puts, now)
    for kind, key in ctx.deletes:
        engine.remove(kind, key, now)
    return ctx


@pytest.fixture
def engine() -> RulesEngine:
    e = RulesEngine(CFG)
    e.rebuild(NOW)
    for cmd in sample.sample_commands(TODAY):
        run(e, cmd)
    return e


def refused(engine: RulesEngine, cmd: m.Command) -> DomainError:
    before = engine.facts.all_facts()
    with pytest.raises(DomainError) as exc:
        run(engine, cmd)
    assert engine.facts.all_facts() == before
    return exc.value


def test_one_physical_key_per_employment(engine: RulesEngine) -> None:
    err = refused(
        engine, m.HandOut(credential_number=sample.KEY_IN_STOCK, employment_id="emp-anna")
    )
    assert (err.code, err.field) == ("CONFLICT", "employment_id")


def test_a_person_with_two_employments_holds_two_keys(engine: RulesEngine) -> None:
    held = engine.facts.credentials_by_employment
    assert held["emp-bjorn-main"] == {sample.KEY_BJORN_MAIN}
    assert held["emp-bjorn-sub"] == {sample.KEY_BJORN_SUB}


def test_illegal_lifecycle_transitions_are_refused(engine: RulesEngine) -> None:
    err = refused(engine, m.SignReceipt(credential_number=sample.KEY_IN_STOCK))
    assert err.code == "ILLEGAL_TRANSITION"
    run(engine, m.ReportCredential(credential_number=sample.KEY_ERIK, outcome="returned"))
    err = refused(engine, m.ReportCredential(credential_number=sample.KEY_ERIK, outcome="lost"))
    assert err.code == "ILLEGAL_TRANSITION" and "returned" in err.message


@given(st.sampled_from(list(CredentialState)), st.sampled_from(list(CredentialState)))
def test_the_transition_table_is_what_credentials_enforce(
    a: CredentialState, b: CredentialState
) -> None:
    emp = None if a is CredentialState.DELIVERED else "emp-x"
    cred = Credential(number="100000099", kind=CredentialKind.KEY, state=a, employment_id=emp)
    assert cred.can_become(b) == (b in CREDENTIAL_TRANSITIONS[a])
    if a in (
        CredentialState.RETURNED,
        CredentialState.LOST,
        CredentialState.BROKEN,
        CredentialState.DESTROYED,
        CredentialState.REPLACED,
    ):
        assert not cred.can_become(b)


def test_replacing_a_key_revokes_the_old_and_links_the_new(engine: RulesEngine) -> None:
    ctx = run(
        engine,
        m.ReplaceKey(
            old_number=sample.KEY_ANNA, new_number=sample.KEY_IN_STOCK, old_outcome="lost"
        ),
    )
    assert ctx.result["revoked"] == sample.KEY_ANNA
    old = engine.states[sample.KEY_ANNA]
    assert old.revoked and Reason.CREDENTIAL_REVOKED in old.reasons
    new = engine.facts.credentials[sample.KEY_IN_STOCK]
    assert new.employment_id == "emp-anna" and new.state is CredentialState.HANDED_OUT
    assert engine.states[sample.KEY_IN_STOCK].reasons == (Reason.RECEIPT_UNSIGNED,)
    run(engine, m.SignReceipt(credential_number=sample.KEY_IN_STOCK))
    assert engine.states[sample.KEY_IN_STOCK].active


def test_a_lost_employee_card_costs_400_and_a_visitor_card_nothing(engine: RulesEngine) -> None:
    ctx = run(engine, m.ReportCredential(credential_number=sample.TAG_ANNA, outcome="lost"))
    assert ctx.result["fee_nok"] == 400
    assert ctx.result["billed_employment"] == "emp-anna"
    ctx = run(engine, m.ReturnVisitorCard(number=sample.VISITOR_CARD, lost=True))
    assert ctx.result["fee_nok"] == 0


def test_returning_a_visitor_card_erases_the_holders_data(engine: RulesEngine) -> None:
    run(engine, m.ReturnVisitorCard(number=sample.VISITOR_CARD))
    card = engine.facts.visitor_cards[sample.VISITOR_CARD]
    assert (card.holder_name, card.company, card.mobile) == (ERASED, ERASED, ERASED)
    assert card.erased and card.returned_at == NOW
    assert not engine.states[sample.VISITOR_CARD].active


def visitor(**over: object) -> m.IssueVisitorCard:
    fields: dict[str, object] = dict(
        number="5000002",
        holder_name="Ola Nordmann",
        company="Leverandør AS",
        mobile="+4791234567",
        sponsor_employment_id="emp-anna",
        reason=VisitorReason.SUPPLIER,
        space_ids=("sp-office",),
        valid_until=NOW + timedelta(days=1),
        confirmed_in_person=True,
        return_duty_acknowledged=True,
    )
    fields.update(over)
    return m.IssueVisitorCard.model_validate(fields)


def test_a_visitor_card_needs_a_registered_sponsor(engine: RulesEngine) -> None:
    err = refused(engine, visitor(sponsor_employment_id="emp-nobody"))
    assert (err.code, err.field) == ("NOT_FOUND", "sponsor_employment_id")


def test_a_visitor_card_must_be_confirmed_in_person() -> None:
    with pytest.raises(ValueError, match="confirmed_in_person"):
        visitor(confirmed_in_person=False)


def test_a_forgot_card_card_lasts_at_most_to_the_end_of_the_working_day(
    engine: RulesEngine,
) -> None:
    end = end_of_working_day(NOW, CFG)
    assert end.astimezone(CFG.timezone).hour == 17
    err = refused(
        engine, visitor(reason=VisitorReason.FORGOT_CARD, valid_until=end + timedelta(seconds=1))
    )
    assert err.field == "valid_until"
    run(engine, visitor(reason=VisitorReason.FORGOT_CARD, valid_until=end))
    assert engine.states["5000002"].active


def test_an_employee_tag_waits_for_hr_approval(engine: RulesEngine) -> None:
    run(engine, m.RegisterTags(numbers=("4000002",)))
    run(engine, m.HandOut(credential_number="4000002", employment_id="emp-bjorn-main"))
    run(engine, m.SignReceipt(credential_number="4000002"))
    assert engine.states["4000002"].reasons[0] is Reason.HR_APPROVAL_MISSING
    run(engine, m.ApproveEmployeeCard(credential_number="4000002"))
    assert Reason.HR_APPROVAL_MISSING not in engine.states["4000002"].reasons


def test_keys_cannot_be_ordered_without_an_agreement_in_force(engine: RulesEngine) -> None:
    from gateway.domain import KeyOrder

    err = refused(
        engine,
        m.PlaceKeyOrder(
            order=KeyOrder(
                id="order-x",
                org_number=sample.ENDED,
                quantity=1,
                delivery_address="x",
                ordered_at=NOW,
            )
        ),
    )
    assert (err.code, err.field) == ("CONFLICT", "order.org_number")


def test_a_delivery_cannot_exceed_the_order(engine: RulesEngine) -> None:
    from gateway.domain import DeliveryManifest

    err = refused(
        engine,
        m.RegisterDelivery(
            manifest=DeliveryManifest(
                order_id="order-sub-1", delivered_at=NOW, key_serials=("100000099",)
            )
        ),
    )
    assert err.field == "manifest.key_serials"


def test_a_decided_application_cannot_be_decided_again_differently(engine: RulesEngine) -> None:
    app = engine.facts.applications["asg-hallsberg"][3]
    approved = type(app).model_validate(
        app.model_dump() | {"status": "approved", "decided_at": NOW}
    )
    run(engine, m.PutApplication(application=approved))
    assert engine.facts.latest_approved["asg-hallsberg"].revision == 3
    rejected = type(app).model_validate(
        app.model_dump() | {"status": "rejected", "decided_at": NOW}
    )
    err = refused(engine, m.PutApplication(application=rejected))
    assert err.code == "ILLEGAL_TRANSITION"


def test_terminated_id06_cards_cannot_be_unblocked(engine: RulesEngine) -> None:
    run(engine, m.BlockId06(card_number="ID06DN0001", terminate=True))
    err = refused(engine, m.UnblockId06(card_number="ID06DN0001"))
    assert err.code == "ILLEGAL_TRANSITION"

"""The engine's compact holding of facts and its caches change nothing a caller can see."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.domain import (
    AccessApplication,
    ApplicationEntry,
    ApplicationStatus,
    Assignment,
    Credential,
    CredentialKind,
    CredentialState,
    Employment,
    Id06Card,
    KeyGrantAgreement,
    Organisation,
    Person,
    Space,
)
from gateway.domain.identifiers import org_number_with_check_digit
from gateway.rules import Reason, RulesConfig, RulesEngine
from gateway.rules.factset import compact

ORG = org_number_with_check_digit("556600001")
TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def employment(eid: str, until: date) -> Employment:
    return Employment(
        id=eid,
        person_id=f"p-{eid}",
        org_number=ORG,
        id06=Id06Card(card_number=f"ID06CARD{eid.upper()}", valid_until=until),
    )


def test_compacted_facts_are_equal_and_dump_and_copy_alike() -> None:
    until = TODAY + timedelta(days=300)
    a, b = employment("a", until), employment("b", date(2027, 9, 19))
    before = (a.model_dump(), a.model_dump(exclude_unset=True), set(a.model_fields_set))
    compact(a)
    compact(b)
    assert (a.model_dump(), a.model_dump(exclude_unset=True), a.model_fields_set) == before
    assert a == employment("a", until)
    # Equal dates are one object now; the field-name sets are shared, and a copy with
    # changes gets its own.
    assert a.id06.valid_until is b.id06.valid_until
    assert a.model_fields_set is b.model_fields_set
    # So is the employer's organisation number (validation makes a string for each).
    assert a.org_number is b.org_number and a.org_number == ORG
    shared = set(a.model_fields_set)
    copy = a.model_copy(update={"person_id": "p-other"})
    assert copy.person_id == "p-other" and copy.model_fields_set == shared
    assert a.model_fields_set == shared and b.model_fields_set == shared


def test_the_engine_holds_one_string_per_id() -> None:
    def text(value: str) -> str:
        return "".join(list(value))  # an equal string of its own, as each fact validated has

    agreement = KeyGrantAgreement(
        id="agr",
        org_number=ORG,
        signed_on=TODAY - timedelta(days=30),
        valid_from=TODAY - timedelta(days=30),
    )
    facts_in = site(agreement)
    facts_in[3] = Person(id=text("p-a"), first_name="A", last_name="A")
    facts_in[4] = employment(text("a"), TODAY + timedelta(days=300)).model_copy(
        update={"person_id": text("p-a")}
    )
    facts_in[5] = Credential(
        number="100000001",
        kind=CredentialKind.KEY,
        state=CredentialState.IN_SERVICE,
        employment_id=text("a"),
    )
    facts = RulesEngine.build(facts_in, NOW, RulesConfig()).facts  # type: ignore[arg-type]
    employment_id = facts.employments["a"].id
    assert facts.credentials["100000001"].employment_id is employment_id
    (entry,) = facts.latest_approved["asg"].entries
    assert entry.employment_id is employment_id
    assert facts.employments["a"].person_id is facts.persons["p-a"].id
    assert facts.employments["a"].person_id == "p-a"


def site(agreement: KeyGrantAgreement) -> list[object]:
    return [
        Organisation(org_number=ORG, name="Org"),
        agreement,
        Space(id="sp", name="Space", cylinders=("300001",)),
        Person(id="p-a", first_name="A", last_name="A"),
        employment("a", TODAY + timedelta(days=300)),
        Credential(
            number="100000001",
            kind=CredentialKind.KEY,
            state=CredentialState.IN_SERVICE,
            employment_id="a",
        ),
        Assignment(
            id="asg",
            name="Asg",
            main_contractor=ORG,
            project_manager="PM",
            starts_on=TODAY - timedelta(days=10),
            ends_on=TODAY + timedelta(days=100),
        ),
        AccessApplication(
            assignment_id="asg",
            revision=1,
            status=ApplicationStatus.APPROVED,
            submitted_at=NOW - timedelta(days=3),
            decided_at=NOW - timedelta(days=2),
            entries=(
                ApplicationEntry(
                    employment_id="a",
                    space_ids=("sp",),
                    valid_from=TODAY - timedelta(days=5),
                    valid_until=TODAY + timedelta(days=50),
                ),
            ),
        ),
    ]


def test_a_changed_agreement_is_seen_at_the_same_instant() -> None:
    """The agreement window of an organisation is remembered per instant; changing an
    agreement forgets it."""
    agreement = KeyGrantAgreement(
        id="agr",
        org_number=ORG,
        signed_on=TODAY - timedelta(days=30),
        valid_from=TODAY - timedelta(days=30),
    )
    engine = RulesEngine.build(site(agreement), NOW, RulesConfig())  # type: ignore[arg-type]
    assert engine.states["100000001"].active
    ended = agreement.model_copy(update={"valid_until": TODAY - timedelta(days=1)})
    engine.apply(ended, NOW)
    state = engine.states["100000001"]
    assert not state.active and Reason.AGREEMENT_ENDED in state.reasons
    engine.remove(KeyGrantAgreement, ("agr",), NOW)
    assert Reason.NO_AGREEMENT in engine.states["100000001"].reasons
    engine.apply(agreement, NOW)
    assert engine.states["100000001"].active


# --------------------------------------------------------------------------- application revisions

_DECIDED = {
    ApplicationStatus.APPROVED: True,
    ApplicationStatus.REJECTED: True,
    ApplicationStatus.SUBMITTED: False,
    ApplicationStatus.WITHDRAWN: False,
}


def revision(number: int, status: ApplicationStatus, days: int = 50) -> AccessApplication:
    return AccessApplication(
        assignment_id="asg",
        revision=number,
        status=status,
        submitted_at=NOW - timedelta(days=3),
        decided_at=NOW - timedelta(days=2) if _DECIDED[status] else None,
        entries=(
            ApplicationEntry(
                employment_id="a",
                space_ids=("sp",),
                valid_from=TODAY - timedelta(days=5),
                valid_until=TODAY + timedelta(days=days),
            ),
        ),
    )


# What a command may do to an assignment's application (gateway.commands.handlers): submit a
# new revision, or decide the newest one; an older revision is refused as stale.
_NEXT = {
    ApplicationStatus.SUBMITTED: set(ApplicationStatus),
    ApplicationStatus.APPROVED: {ApplicationStatus.WITHDRAWN},
    ApplicationStatus.REJECTED: set(),
    ApplicationStatus.WITHDRAWN: set(),
}


@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from(list(ApplicationStatus))),
        min_size=1,
        max_size=12,
    )
)
def test_the_engine_holds_the_revisions_that_can_still_be_in_effect(
    steps: list[tuple[bool, ApplicationStatus]],
) -> None:
    """After any history a command may make (a new revision, or a decision on the newest),
    the revision in effect is the latest approved one, and the engine holds only the newest
    revision and the latest approved one before it."""
    engine = _without_applications()
    final: dict[int, ApplicationStatus] = {}
    for new, status in steps:
        newest = max(final, default=0)
        if new or not newest:
            number = newest + 1
        elif status in _NEXT[final[newest]]:
            number = newest
        else:
            continue
        engine.apply(revision(number, status), NOW)
        final[number] = status
    newest = max(final)
    approved = [n for n, s in final.items() if s is ApplicationStatus.APPROVED]
    in_effect = engine.facts.latest_approved.get("asg")
    assert (in_effect.revision if in_effect else None) == max(approved, default=None)
    before = [n for n in approved if n < newest]
    assert set(engine.facts.applications["asg"]) == {newest, *([max(before)] if before else [])}


def test_withdrawing_the_newest_revision_brings_back_the_approved_one_before_it() -> None:
    engine = _without_applications()
    for number, days in ((1, 10), (2, 20), (3, 30)):
        engine.apply(revision(number, ApplicationStatus.APPROVED, days), NOW)
    assert sorted(engine.facts.applications["asg"]) == [2, 3]  # revision 1 is only stored
    engine.apply(revision(3, ApplicationStatus.WITHDRAWN, 30), NOW)
    in_effect = engine.facts.latest_approved["asg"]
    assert in_effect.revision == 2
    (grant,) = engine.state("100000001").grants  # type: ignore[union-attr]
    assert grant.window.end is not None
    assert grant.window.end.date() >= TODAY + timedelta(days=20)
    assert grant.window.end.date() < TODAY + timedelta(days=22)


def _without_applications() -> RulesEngine:
    agreement = KeyGrantAgreement(
        id="agr",
        org_number=ORG,
        signed_on=TODAY - timedelta(days=30),
        valid_from=TODAY - timedelta(days=30),
    )
    facts = [f for f in site(agreement) if not isinstance(f, AccessApplication)]
    return RulesEngine.build(facts, NOW, RulesConfig())  # type: ignore[arg-type]

"""Hypothesis strategies that build valid domain facts, for any test that needs them.

Every builder returns facts that pass the models' own validation. Identifiers, organisation
numbers and credential numbers are drawn from strategies you can replace, so that a test can
make facts collide (small pools, :func:`small_pools`) or refer to each other::

    pools = small_pools()
    st.lists(fact_strategy(Employment, pools))      # employments that share ids and persons

:data:`FACT_BUILDERS` maps every type of :data:`gateway.domain.FACT_TYPES` to its builder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from gateway.domain import (
    ERASED,
    FACT_TYPES,
    AccessApplication,
    ApplicationEntry,
    ApplicationStatus,
    Assignment,
    Competence,
    Credential,
    CredentialKind,
    CredentialState,
    DeliveryManifest,
    DoorRef,
    Employment,
    Fact,
    Id06Card,
    Id06Status,
    KeyGrantAgreement,
    KeyOrder,
    KeyOrderStatus,
    Organisation,
    Person,
    Receipt,
    ScheduleInterval,
    Space,
    VisitorCard,
    VisitorReason,
    WeeklySchedule,
)
from gateway.domain.identifiers import org_number_with_check_digit

S = st.SearchStrategy

# --------------------------------------------------------------------------- values

TIMEZONES = (
    UTC,
    ZoneInfo("Europe/Stockholm"),
    ZoneInfo("America/New_York"),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-11)),
)


def idents() -> S[str]:
    """Identifiers as :data:`gateway.domain.identifiers.Ident` accepts them."""
    return st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", fullmatch=True)


def org_numbers() -> S[str]:
    """Swedish organisation numbers, normalised ``NNNNNN-NNNN`` with a valid check digit."""
    return st.from_regex(r"[0-9]{9}", fullmatch=True).map(org_number_with_check_digit)


def key_serials() -> S[str]:
    """Serial numbers of CLIQ-style keys: 9 digits."""
    return st.from_regex(r"[0-9]{9}", fullmatch=True)


def rfid_numbers() -> S[str]:
    """RFID tag, visitor card and cylinder numbers: 1..2**32-1 without leading zeros."""
    return st.integers(min_value=1, max_value=0xFFFFFFFF).map(str)


def id06_numbers() -> S[str]:
    return st.from_regex(r"[A-Z0-9]{6,20}", fullmatch=True)


def mobiles() -> S[str]:
    return st.from_regex(r"\+?[0-9]{7,15}", fullmatch=True)


def competence_codes() -> S[str]:
    return st.from_regex(r"[A-Z0-9_.-]{1,40}", fullmatch=True)


def texts(max_size: int) -> S[str]:
    """Printable text (letters of any script, digits, punctuation, symbols, inner spaces),
    already stripped as the models strip it."""
    alphabet = st.characters(categories=("L", "N", "P", "S"), include_characters=" ")
    return st.text(alphabet, min_size=1, max_size=max_size).map(lambda s: s.strip(" ")).filter(bool)


def dates(min_value: date = date(2000, 1, 1), max_value: date = date(2100, 12, 31)) -> S[date]:
    return st.dates(min_value=min_value, max_value=max_value)


def utc_datetimes(
    min_value: datetime = datetime(2000, 1, 1), max_value: datetime = datetime(2100, 12, 31)
) -> S[datetime]:
    """Aware instants in various time zones (the models convert them to UTC)."""
    return st.datetimes(
        min_value=min_value, max_value=max_value, timezones=st.sampled_from(TIMEZONES)
    )


def schedule_intervals() -> S[ScheduleInterval]:
    @st.composite
    def build(draw: st.DrawFn) -> ScheduleInterval:
        days = draw(st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True))
        start = draw(st.times())
        end = draw(st.just(time(0, 0)) | st.times(min_value=start))
        if end <= start:
            end = time(0, 0)  # until midnight
        return ScheduleInterval(days=tuple(days), start=start, end=end)

    return build()


def weekly_schedules() -> S[WeeklySchedule]:
    return st.lists(schedule_intervals(), min_size=1, max_size=4).map(
        lambda ivs: WeeklySchedule(intervals=tuple(ivs))
    )


# --------------------------------------------------------------------------- pools


@dataclass(frozen=True)
class Pools:
    """Where the identifying values of facts come from. Replace one to make facts collide or
    reference each other."""

    ids: S[str] = field(default_factory=idents)
    org_numbers: S[str] = field(default_factory=org_numbers)
    key_serials: S[str] = field(default_factory=key_serials)
    rfid_numbers: S[str] = field(default_factory=rfid_numbers)
    id06_numbers: S[str] = field(default_factory=id06_numbers)
    competence_codes: S[str] = field(default_factory=competence_codes)
    revisions: S[int] = field(default_factory=lambda: st.integers(1, 2**31 - 1))
    instants: S[datetime] = field(default_factory=utc_datetimes)
    dates: S[date] = field(default_factory=dates)


def small_pools() -> Pools:
    """Few distinct identifiers, so that generated facts replace and reference each other."""
    return replace(
        Pools(),
        ids=st.sampled_from(["a", "b", "c", "d"]),
        org_numbers=st.sampled_from(
            [org_number_with_check_digit(n) for n in ("556036079", "212000014", "556677889")]
        ),
        key_serials=st.sampled_from(["100000001", "100000002", "100000003"]),
        rfid_numbers=st.sampled_from(["1", "42", "4294967295"]),
        id06_numbers=st.sampled_from(["ABC123", "XYZ789", "QQQ000"]),
        competence_codes=st.sampled_from(["ELSAK", "BAS-U", "HETA.ARB"]),
        revisions=st.integers(1, 4),
        instants=st.sampled_from(
            [
                datetime(2026, 1, 1, 8, tzinfo=UTC),
                datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
                datetime(2026, 6, 1, 12, tzinfo=UTC),
            ]
        ),
    )


# --------------------------------------------------------------------------- facts


def organisations(p: Pools | None = None) -> S[Organisation]:
    p = p or Pools()
    return st.builds(Organisation, org_number=p.org_numbers, name=texts(200))


def key_grant_agreements(p: Pools | None = None) -> S[KeyGrantAgreement]:
    p = p or Pools()

    @st.composite
    def build(draw: st.DrawFn) -> KeyGrantAgreement:
        signed = draw(p.dates)
        valid_from = signed + timedelta(days=draw(st.integers(0, 60)))
        until = draw(st.none() | st.integers(0, 3650).map(lambda d: valid_from + timedelta(d)))
        return KeyGrantAgreement(
            id=draw(p.ids),
            org_number=draw(p.org_numbers),
            signed_on=signed,
            valid_from=valid_from,
            valid_until=until,
            terminated_at=draw(st.none() | p.instants),
        )

    return build()


def persons(p: Pools | None = None) -> S[Person]:
    p = p or Pools()
    return st.builds(
        Person,
        id=p.ids,
        first_name=texts(100),
        last_name=texts(100),
        mobile=st.none() | mobiles(),
    )


def id06_cards(p: Pools | None = None) -> S[Id06Card]:
    p = p or Pools()
    return st.builds(
        Id06Card,
        card_number=p.id06_numbers,
        valid_until=p.dates,
        status=st.sampled_from(Id06Status),
    )


def employments(p: Pools | None = None) -> S[Employment]:
    p = p or Pools()
    return st.builds(
        Employment, id=p.ids, person_id=p.ids, org_number=p.org_numbers, id06=id06_cards(p)
    )


def competences(p: Pools | None = None) -> S[Competence]:
    p = p or Pools()
    return st.builds(Competence, person_id=p.ids, code=p.competence_codes, valid_until=p.dates)


def door_refs(p: Pools | None = None) -> S[DoorRef]:
    p = p or Pools()
    return st.builds(DoorRef, controller_id=p.ids, door=st.integers(1, 16))


def spaces(p: Pools | None = None) -> S[Space]:
    p = p or Pools()
    return st.builds(
        Space,
        id=p.ids,
        name=texts(200),
        cylinders=st.lists(p.rfid_numbers, max_size=6, unique=True).map(tuple),
        doors=st.lists(door_refs(p), max_size=6, unique_by=lambda d: (d.controller_id, d.door)).map(
            tuple
        ),
        required_competences=st.lists(p.competence_codes, max_size=3).map(tuple),
        revalidation_days=st.none() | st.integers(1, 365),
    )


def assignments(p: Pools | None = None) -> S[Assignment]:
    p = p or Pools()

    @st.composite
    def build(draw: st.DrawFn) -> Assignment:
        starts = draw(p.dates)
        return Assignment(
            id=draw(p.ids),
            name=draw(texts(200)),
            main_contractor=draw(p.org_numbers),
            project_manager=draw(texts(100)),
            starts_on=starts,
            ends_on=starts + timedelta(days=draw(st.integers(0, 2000))),
        )

    return build()


def application_entries(
    p: Pools | None = None, *, employment_id: S[str] | None = None
) -> S[ApplicationEntry]:
    p = p or Pools()

    @st.composite
    def build(draw: st.DrawFn) -> ApplicationEntry:
        valid_from = draw(p.dates)
        return ApplicationEntry(
            employment_id=draw(employment_id or p.ids),
            space_ids=tuple(draw(st.lists(p.ids, min_size=1, max_size=4, unique=True))),
            valid_from=valid_from,
            valid_until=valid_from + timedelta(days=draw(st.integers(0, 400))),
            schedule=draw(st.none() | weekly_schedules()),
        )

    return build()


def access_applications(p: Pools | None = None) -> S[AccessApplication]:
    p = p or Pools()

    @st.composite
    def build(draw: st.DrawFn) -> AccessApplication:
        status = draw(st.sampled_from(ApplicationStatus))
        submitted = draw(p.instants).astimezone(UTC)  # arithmetic in UTC, not wall time
        decided: datetime | None = None
        if status in (ApplicationStatus.APPROVED, ApplicationStatus.REJECTED) or draw(
            st.booleans()
        ):
            decided = submitted + draw(
                st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60))
            )
        entries = draw(
            st.lists(application_entries(p), max_size=4, unique_by=lambda e: e.employment_id)
        )
        return AccessApplication(
            assignment_id=draw(p.ids),
            revision=draw(p.revisions),
            status=status,
            expedited=draw(st.booleans()),
            submitted_at=submitted,
            decided_at=decided,
            entries=tuple(entries),
        )

    return build()


def credentials(p: Pools | None = None) -> S[Credential]:
    p = p or Pools()

    @st.composite
    def build(draw: st.DrawFn) -> Credential:
        kind = draw(st.sampled_from(CredentialKind))
        number = draw(p.key_serials if kind is CredentialKind.KEY else p.rfid_numbers)
        state = draw(st.sampled_from(CredentialState))
        if state is CredentialState.DELIVERED:
            employment_id = None
        elif (
            state in (CredentialState.HANDED_OUT, CredentialState.IN_SERVICE)
            and kind is not CredentialKind.VISITOR_CARD
        ):
            employment_id = draw(p.ids)
        else:
            employment_id = draw(st.none() | p.ids)
        replaced_by = None
        if state is CredentialState.REPLACED:
            replaced_by = draw(st.none() | p.key_serials | p.rfid_numbers)
        return Credential(
            number=number,
            kind=kind,
            state=state,
            employment_id=employment_id,
            order_id=draw(st.none() | p.ids),
            replaced_by=replaced_by,
            hr_approved_at=draw(st.none() | p.instants),
            state_changed_at=draw(st.none() | p.instants),
        )

    return build()


def key_orders(p: Pools | None = None) -> S[KeyOrder]:
    p = p or Pools()
    return st.builds(
        KeyOrder,
        id=p.ids,
        org_number=p.org_numbers,
        quantity=st.integers(1, 10000),
        delivery_address=texts(300),
        status=st.sampled_from(KeyOrderStatus),
        ordered_at=p.instants,
    )


def delivery_manifests(p: Pools | None = None) -> S[DeliveryManifest]:
    p = p or Pools()
    return st.builds(
        DeliveryManifest,
        order_id=p.ids,
        delivered_at=p.instants,
        key_serials=st.lists(p.key_serials, min_size=1, max_size=8, unique=True).map(tuple),
    )


def receipts(p: Pools | None = None) -> S[Receipt]:
    p = p or Pools()

    @st.composite
    def build(draw: st.DrawFn) -> Receipt:
        produced = draw(p.instants).astimezone(UTC)
        signed = draw(
            st.none()
            | st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)).map(
                lambda d: produced + d
            )
        )
        return Receipt(
            credential_number=draw(p.key_serials | p.rfid_numbers),
            employment_id=draw(p.ids),
            produced_at=produced,
            signed_at=signed,
        )

    return build()


def visitor_cards(p: Pools | None = None) -> S[VisitorCard]:
    p = p or Pools()

    @st.composite
    def build(draw: st.DrawFn) -> VisitorCard:
        valid_from = draw(p.instants).astimezone(UTC)
        erased = draw(st.booleans())
        return VisitorCard(
            number=draw(p.rfid_numbers),
            holder_name=ERASED if erased else draw(texts(200)),
            company=ERASED if erased else draw(texts(200)),
            mobile=ERASED if erased else draw(mobiles()),
            sponsor_employment_id=draw(p.ids),
            reason=draw(st.sampled_from(VisitorReason)),
            space_ids=tuple(draw(st.lists(p.ids, min_size=1, max_size=4, unique=True))),
            valid_from=valid_from,
            valid_until=valid_from
            + draw(st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=90))),
            issued_at=draw(p.instants),
            returned_at=draw(st.none() | p.instants),
            erased=erased,
        )

    return build()


FACT_BUILDERS: Mapping[type[Fact], Callable[[Pools | None], S[Fact]]] = {
    Organisation: organisations,
    KeyGrantAgreement: key_grant_agreements,
    Person: persons,
    Employment: employments,
    Competence: competences,
    Space: spaces,
    Assignment: assignments,
    AccessApplication: access_applications,
    Credential: credentials,
    KeyOrder: key_orders,
    DeliveryManifest: delivery_manifests,
    Receipt: receipts,
    VisitorCard: visitor_cards,
}
assert set(FACT_BUILDERS) == set(FACT_TYPES), "every fact type needs a builder"


def fact_strategy(kind: type[Fact], pools: Pools | None = None) -> S[Fact]:
    """Valid facts of one type."""
    return FACT_BUILDERS[kind](pools)


def facts(pools: Pools | None = None) -> S[Fact]:
    """Valid facts of any type."""
    return st.one_of([build(pools) for build in FACT_BUILDERS.values()])

"""The order of writes: revocations first, copy-on-write time profiles, and at every
intermediate state each card holds its old or its new record."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import AllowEntry, HardwareSchedule, ScheduleWindow
from drivers.uhppote.plan import DeleteCard, PutCard, SetProfile, narrows, plan
from drivers.uhppote.records import (
    Card,
    EncodeError,
    Profile,
    ProfileContent,
    Table,
    desired_table,
)

from .strategies import allow_lists, schedule_sets

TZ = ZoneInfo("Europe/Stockholm")
EMPTY = Table({}, {})


def _desired(entries: list[AllowEntry], schedules: list[HardwareSchedule]):  # type: ignore[no-untyped-def]
    return desired_table(entries, schedules, doors=4, tz=TZ)


@st.composite
def transitions(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    before_schedules = draw(schedule_sets())
    after_schedules = draw(st.one_of(st.just(before_schedules), schedule_sets()))
    before = draw(allow_lists(before_schedules))
    after = draw(allow_lists(after_schedules))
    return before, before_schedules, after, after_schedules


@given(transitions())
def test_every_intermediate_state_is_safe(t) -> None:  # type: ignore[no-untyped-def]
    before, before_schedules, after, after_schedules = t
    current = plan(_desired(before, before_schedules), EMPTY).target
    p = plan(_desired(after, after_schedules), current)
    cards = dict(current.cards)
    profiles = dict(current.profiles)
    put: set[int] = set()
    widened = False
    revocations = 0
    for step in p.steps:
        if isinstance(step, SetProfile):
            pid = step.profile.profile_id
            assert pid not in Table(cards, profiles).reachable_profiles(), (
                "a profile in use was changed in place"
            )
            profiles[pid] = step.profile
            continue
        if isinstance(step, DeleteCard):
            assert not widened
            revocations += 1
            del cards[step.number]
            continue
        card = step.card
        assert card.number not in put, "a card was written twice"
        put.add(card.number)
        old = current.cards.get(card.number)
        is_narrowing = old is not None and narrows(old, card)
        if not is_narrowing:
            widened = True
        else:
            revocations += 1
            assert not widened, "a revocation came after a grant"
        cards[card.number] = card
        # Never a card naming a profile that is not written (the device would let it pass).
        for pid in card.profile_ids():
            assert pid in profiles
    assert revocations == p.revocations
    assert cards == dict(p.target.cards)
    for pid in p.target.reachable_profiles():
        assert profiles[pid] == p.target.profiles[pid]


@given(transitions())
def test_a_second_plan_has_nothing_to_do(t) -> None:  # type: ignore[no-untyped-def]
    _, _, after, after_schedules = t
    target = plan(_desired(after, after_schedules), EMPTY).target
    again = plan(_desired(after, after_schedules), target)
    assert again.steps == ()
    assert again.target.checksum() == target.checksum()


def test_one_revocation_is_one_delete() -> None:
    entries = [AllowEntry(n, 0b1) for n in range(1, 101)]
    current = plan(_desired(entries, []), EMPTY).target
    p = plan(_desired(entries[1:], []), current)
    assert p.steps == (DeleteCard(1),)
    assert p.revocations == 1


def test_a_schedule_change_writes_a_new_chain_before_repointing_cards() -> None:
    office = [HardwareSchedule(1, (ScheduleWindow(0b11111, 480, 1020),))]
    later = [HardwareSchedule(1, (ScheduleWindow(0b11111, 540, 960),))]
    entries = [AllowEntry(7, 0b1, schedule_id=1), AllowEntry(8, 0b1)]
    current = plan(_desired(entries, office), EMPTY).target
    assert current.cards[7].doors[0] == 2
    p = plan(_desired(entries, later), current)
    (profile_step, card_step) = p.steps
    assert isinstance(profile_step, SetProfile) and isinstance(card_step, PutCard)
    assert profile_step.profile.profile_id == 3  # 2 is in use
    assert card_step.card.doors[0] == 3
    assert p.revocations == 1


def test_schedules_become_linked_profiles_of_three_segments() -> None:
    windows = (
        *(ScheduleWindow(0b1, 60 * h, 60 * h + 30) for h in range(4)),
        ScheduleWindow(0b1000000, 0, 1440),
    )
    table = plan(
        _desired([AllowEntry(1, 0b10, schedule_id=1)], [HardwareSchedule(1, windows)]), EMPTY
    ).target
    head = table.cards[1].doors[1]
    chain = []
    pid = head
    while pid:
        chain.append(table.profiles[pid])
        pid = table.profiles[pid].linked
    assert [p.content.weekdays for p in chain] == [
        (True, False, False, False, False, False, False),
        (True, False, False, False, False, False, False),
        (False, False, False, False, False, False, True),
    ]
    assert chain[0].content.segments[0] == (time(0, 0), time(0, 29))
    assert chain[1].content.segments == (
        (time(3, 0), time(3, 29)),
        (time(0), time(0)),
        (time(0), time(0)),
    )
    assert chain[2].content.segments[0] == (time(0, 0), time(23, 59))


def test_windows_round_to_whole_local_days() -> None:
    entry = AllowEntry(
        1,
        0b1,
        valid_from=datetime(2024, 5, 1, 7, 0, tzinfo=UTC),  # 09:00 local
        valid_until=datetime(2024, 5, 3, 22, 0, tzinfo=UTC),  # 00:00 local, 4 May
    )
    inward = desired_table([entry], [], doors=4, tz=TZ, rounding="inward").cards[1]
    outward = desired_table([entry], [], doors=4, tz=TZ, rounding="outward").cards[1]
    assert (inward.start, inward.end) == (date(2024, 5, 2), date(2024, 5, 3))
    assert (outward.start, outward.end) == (date(2024, 5, 1), date(2024, 5, 3))
    day_visit = AllowEntry(
        2, 0b1, datetime(2024, 5, 1, 7, tzinfo=UTC), datetime(2024, 5, 1, 15, tzinfo=UTC)
    )
    result = desired_table([day_visit], [], doors=4, tz=TZ, rounding="inward")
    assert result.cards == {} and result.dropped == 1


def test_several_entries_of_one_credential_make_one_card() -> None:
    schedules = [HardwareSchedule(1, (ScheduleWindow(0b11111, 480, 1020),))]
    entries = [
        AllowEntry(9, 0b0011, schedule_id=1),
        AllowEntry(9, 0b0010),
        AllowEntry(9, 0b1000, valid_until=datetime(2024, 6, 1, tzinfo=TZ)),
    ]
    table = plan(_desired(entries, schedules), EMPTY).target
    card = table.cards[9]
    assert card.doors[0] >= 2  # door 1: office hours only
    assert card.doors[1] == 1  # door 2: any time
    assert card.doors[2] == 0
    assert card.doors[3] >= 2  # door 4: until June, which the card's own range does not say
    door4 = table.profiles[card.doors[3]].content
    assert door4.end == date(2024, 5, 31)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (AllowEntry(0, 1), "entries[0].credential"),
        (AllowEntry(2**32, 1), "entries[0].credential"),
        (AllowEntry(5, 0b10000), "entries[0].doors_mask"),
        (AllowEntry(5, 1, schedule_id=9), "entries[0].schedule_id"),
        (AllowEntry(5, 1, pin=1_000_000), "entries[0].pin"),
        (AllowEntry(4294967294, 1), "entries[0].credential"),
    ],
)
def test_bad_entries_name_the_field(entry: AllowEntry, field: str) -> None:
    with pytest.raises(EncodeError) as err:
        desired_table([entry], [], doors=4, tz=TZ, reserved=frozenset({4294967294}))
    assert err.value.field == field


def test_too_many_profiles_is_refused() -> None:
    schedules = [
        HardwareSchedule(i, tuple(ScheduleWindow(1 << (d % 7), d, d + 1) for d in range(30)))
        for i in range(1, 30)
    ]
    entries = [AllowEntry(i, 1, schedule_id=i) for i in range(1, 30)]
    with pytest.raises(EncodeError, match="schedules: the schedules need"):
        plan(_desired(entries, schedules), EMPTY)


def test_the_checksum_counts_a_missing_profile() -> None:
    card = Card(1, date(2024, 1, 1), date(2024, 12, 31), (2, 0, 0, 0))
    content = ProfileContent(
        date(2024, 1, 1),
        date(2024, 12, 31),
        (True,) * 7,
        ((time(8), time(9)),) + ((time(0), time(0)),) * 2,  # type: ignore[arg-type]
    )
    held = Table({1: card}, {2: Profile(2, content)})
    lost = Table({1: card}, {})
    assert held.checksum() != lost.checksum()

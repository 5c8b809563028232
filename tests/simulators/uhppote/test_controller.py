"""One simulated controller's decisions and memory (no sockets)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from simulators.uhppote.controller import (
    CardRecord,
    DoorControl,
    Reason,
    TimeProfile,
    UhppoteController,
)

# Wednesday 2024-05-15 10:30 in Stockholm (08:30 UTC).
NOW = datetime(2024, 5, 15, 8, 30, tzinfo=UTC).timestamp()
WORKDAYS = (True, True, True, True, True, False, False)
NONE = (time(0), time(0))


def _controller(**kw: object) -> UhppoteController:
    return UhppoteController(
        1234,
        doors=4,
        capacity=10,
        timezone="Europe/Stockholm",
        clock=lambda: NOW,
        **kw,  # type: ignore[arg-type]
    )


def _card(
    number: int = 5, doors: tuple[int, int, int, int] = (1, 0, 0, 0), **kw: object
) -> CardRecord:
    return CardRecord(number, date(2024, 1, 1), date(2024, 12, 31), doors, **kw)  # type: ignore[arg-type]


def _profile(
    pid: int, segment: tuple[time, time], linked: int = 0, weekdays: tuple[bool, ...] = WORKDAYS
) -> TimeProfile:
    return TimeProfile(
        pid,
        date(2024, 1, 1),
        date(2024, 12, 31),
        weekdays,
        (segment, NONE, NONE),
        linked,  # type: ignore[arg-type]
    )


def test_local_clock_follows_the_time_zone() -> None:
    assert _controller().now() == datetime(2024, 5, 15, 10, 30)


def test_grants_and_denials() -> None:
    c = _controller()
    assert c.present(5, 1).reason is Reason.UNKNOWN_CARD
    c.put_card(_card())
    assert c.present(5, 1).granted
    assert c.unlocked(1)
    assert c.present(5, 2).reason is Reason.NO_PRIVILEGE
    c.put_card(CardRecord(6, date(2024, 6, 1), date(2024, 12, 31), (1, 1, 1, 1)))
    assert c.present(6, 1).reason is Reason.NO_PRIVILEGE  # not valid yet
    c.put_card(_card(7, pin=4321))
    assert c.present(7, 1).reason is Reason.WRONG_PIN
    assert c.present(7, 1, pin=4321).granted
    c.doors[1].mode = DoorControl.NORMALLY_CLOSED
    assert c.present(5, 1).reason is Reason.NORMALLY_CLOSED
    assert not c.unlocked(1)
    with pytest.raises(ValueError, match=r"door: must be in 1\.\.4"):
        c.present(5, 5)


def test_time_profiles_and_their_links() -> None:
    c = _controller()
    c.put_card(_card(doors=(10, 11, 12, 0)))
    c.profiles[10] = _profile(10, (time(8, 0), time(10, 30)))  # ends at 10:30 inclusive
    assert c.present(5, 1).granted
    c.profiles[11] = _profile(11, (time(12, 0), time(13, 0)), linked=13)
    c.profiles[13] = _profile(13, (time(10, 0), time(11, 0)))
    assert c.present(5, 2).granted  # through the linked profile
    c.profiles[13] = _profile(13, (time(10, 0), time(11, 0)), weekdays=(False,) * 7)
    assert c.present(5, 2).reason is Reason.OUTSIDE_TIME_PROFILE
    # As real controllers do, a card naming a profile that is not there may pass.
    assert 12 not in c.profiles
    assert c.present(5, 3).granted


def test_card_table_reuses_deleted_slots_and_keeps_capacity() -> None:
    c = _controller()
    for n in range(1, 11):
        assert c.put_card(_card(n))
    assert not c.put_card(_card(11))
    assert c.delete_card(3)
    assert not c.delete_card(3)
    assert c.card_count == 9
    assert c.put_card(_card(11))
    assert c.card(11) is not None
    assert c.put_card(_card(11, doors=(0, 1, 0, 0)))  # replaces in place
    assert c.card_count == 10


def test_power_loss_clears_the_volatile_memory_and_keeps_the_event_log() -> None:
    c = _controller()
    c.put_card(_card())
    c.profiles[10] = _profile(10, (time(8), time(9)))
    c.listener = ("127.0.0.1", 60001)
    c.record_special_events = True
    c.doors[2].mode = DoorControl.NORMALLY_OPEN
    c.present(5, 1)
    c.event_bookmark = 1
    c.power_loss()
    assert c.card_count == 0 and not c.profiles and c.listener is None
    assert c.doors[2].mode is DoorControl.CONTROLLED
    assert not c.record_special_events
    assert c.event_bookmark == 1
    assert c.last_event == 2
    assert c.event(2).reason == Reason.POWER_ON  # type: ignore[union-attr]


def test_event_ring_overwrites_the_oldest() -> None:
    c = _controller(event_capacity=3)
    c.put_card(_card())
    for _ in range(5):
        c.present(5, 1)
    assert (c.first_event, c.last_event) == (3, 5)
    assert c.event(2) is None


def test_drift_and_set_time() -> None:
    c = _controller()
    c.drift(-90)
    assert c.now() == datetime(2024, 5, 15, 10, 28, 30)
    c.set_now(datetime(2024, 5, 15, 10, 30))
    assert c.now() == datetime(2024, 5, 15, 10, 30)


def test_invalid_setup_is_refused() -> None:
    with pytest.raises(ValueError, match="doors"):
        UhppoteController(1, doors=3)
    with pytest.raises(ValueError, match="serial"):
        UhppoteController(0)
    with pytest.raises(ValueError, match="timezone"):
        UhppoteController(1, timezone="Mars/Base")

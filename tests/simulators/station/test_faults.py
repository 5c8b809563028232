"""Fault plan: parameters are validated, counters count down."""

from __future__ import annotations

import pytest

from simulators.station import FaultPlan


def test_corrupt_counts_down_per_burst() -> None:
    plan = FaultPlan(seed=1)
    plan.set("corrupt", count=2, direction="tx")
    data = bytes(range(50))
    assert plan.on_tx(data) != data
    assert plan.on_tx(data) != data
    assert plan.on_tx(data) == data
    assert plan.on_rx(data) == data


def test_every_spreads_the_damage() -> None:
    plan = FaultPlan(seed=1)
    plan.set("drop", count=2, every=3, direction="rx")
    data = bytes(20)
    lengths = [len(plan.on_rx(data)) for _ in range(8)]
    assert lengths == [20, 20, 19, 20, 20, 19, 20, 20]


def test_persistent_fault_until_cleared() -> None:
    plan = FaultPlan()
    plan.set("corrupt", count=-1)
    assert all(plan.on_rx(b"abc") != b"abc" for _ in range(20))
    plan.set("clear")
    assert plan.on_rx(b"abc") == b"abc"
    assert plan.state()["corrupt_rx"] == 0


def test_other_faults_are_recorded() -> None:
    plan = FaultPlan()
    assert plan.set("slow", delay_s=0.25)["reply_delay_s"] == 0.25
    assert plan.set("pull_key", after_chunks=3)["pull_key_after_chunks"] == 3
    assert plan.set("disconnect")["disconnect_after_chunks"] == 0


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("melt", {}, "kind"),
        ("corrupt", {"count": "many"}, "count"),
        ("corrupt", {"direction": "up"}, "direction"),
        ("drop", {"every": 0}, "every"),
        ("slow", {}, "delay_s"),
        ("slow", {"delay_s": 100}, "delay_s"),
        ("pull_key", {"after_chunks": -1}, "after_chunks"),
        ("clear", {"extra": 1}, "extra"),
    ],
)
def test_bad_parameters_are_named(kind: str, params: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}:"):
        FaultPlan().set(kind, **params)

"""The Hypothesis profiles of the suite: CI runs the same examples on every run."""

from __future__ import annotations

from hypothesis import settings

from tests.conftest import IN_CI


def test_ci_runs_derandomized_and_prints_how_to_replay_a_failure() -> None:
    ci = settings.get_profile("ci")
    assert ci.derandomize is True
    assert ci.database is None
    assert ci.print_blob is True
    assert ci.deadline is None


def test_the_profile_in_use_matches_the_environment() -> None:
    assert settings().derandomize is IN_CI

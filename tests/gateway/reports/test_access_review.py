"""The access review report, from the sample story's facts (in memory)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.commands import CommandContext, handle
from gateway.commands import model as m
from gateway.reports.access_review import (
    EXPIRED_NOT_RETURNED,
    NO_ACCESS,
    STOCK_GROUP,
    VISITOR_GROUP,
    AccessReview,
    access_review,
    months_before,
    review_warnings,
)
from gateway.reviews import ReviewRecord
from gateway.rules import RulesConfig, RulesEngine
from tests import sample

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CFG = RulesConfig()
TZ = ZoneInfo("Europe/Stockholm")


def engine_at(now: datetime, *extra: m.Command) -> RulesEngine:
    engine = RulesEngine(CFG)
    engine.rebuild(NOW)
    for cmd in [*sample.sample_commands(TODAY), *extra]:
        ctx = CommandContext(engine.facts, NOW, "tester", CFG, command=cmd)
        handle(ctx, cmd)
        engine.apply_many(ctx.puts, NOW)
    engine.advance(now)
    return engine


def review_at(now: datetime, last: ReviewRecord | None = None, *extra: m.Command) -> AccessReview:
    return access_review(engine_at(now, *extra), now, last, TZ)


def record(at: datetime) -> ReviewRecord:
    return ReviewRecord(1, at, "boss", 10, (), None)


def test_every_live_credential_is_listed_in_its_group() -> None:
    review = review_at(
        NOW, None, m.ReportCredential(credential_number=sample.KEY_DAVID, outcome="lost")
    )
    names = [g.name for g in review.groups]
    assert names[-2:] == [VISITOR_GROUP, STOCK_GROUP]
    assert names[:-2] == sorted(names[:-2])
    lines = {line.number: (g.name, line) for g in review.groups for line in g.lines}
    assert sample.KEY_DAVID not in lines  # lost: no longer reviewed
    assert set(lines) == {
        sample.KEY_ANNA,
        sample.KEY_BJORN_MAIN,
        sample.KEY_BJORN_SUB,
        sample.KEY_CECILIA,
        sample.KEY_ERIK,
        sample.KEY_FATIMA,
        sample.KEY_IN_STOCK,
        sample.KEY_GUSTAV,
        sample.TAG_ANNA,
        sample.VISITOR_CARD,
    }
    group, anna = lines[sample.KEY_ANNA]
    assert group.startswith("Banbyggarna i Mälardalen AB")
    assert (anna.holder, anna.sponsor, anna.active) == ("Anna Lindqvist", "Karin Sjöberg", True)
    assert {o.space_id for o in anna.opens} == {"sp-tech", "sp-signal"}
    group, card = lines[sample.VISITOR_CARD]
    assert group == VISITOR_GROUP
    assert (card.holder, card.organisation) == ("Helena Berg", "Hissservice AB")
    assert card.sponsor.startswith("Anna Lindqvist, Banbyggarna")
    assert [o.space_name for o in card.opens] == ["Kontor entré"]
    assert lines[sample.KEY_IN_STOCK][0] == STOCK_GROUP
    assert review.credentials == 10


def test_lines_carry_what_a_reviewer_should_act_on() -> None:
    later = NOW + timedelta(days=5)  # the visitor card expired on day 2
    lines = {line.number: line for g in review_at(later).groups for line in g.lines}
    assert lines[sample.VISITOR_CARD].flags == (EXPIRED_NOT_RETURNED,)
    assert lines[sample.KEY_ERIK].flags == (NO_ACCESS,)  # removed from the application
    assert "NO_APPROVED_APPLICATION" in lines[sample.KEY_ERIK].reasons
    assert lines[sample.KEY_GUSTAV].flags == (NO_ACCESS,)  # agreement terminated
    assert lines[sample.KEY_ANNA].flags == ()


@pytest.mark.parametrize(
    ("last_days_ago", "warned"),
    [(None, True), (10, False), (89, False), (93, True), (400, True)],
)
def test_the_report_warns_when_the_last_review_is_older_than_a_quarter(
    last_days_ago: int | None, warned: bool
) -> None:
    last = None if last_days_ago is None else record(NOW - timedelta(days=last_days_ago))
    warnings = review_warnings(last, NOW, TZ)
    assert bool(warnings) == warned
    if last is not None and warned:
        assert f"{last_days_ago} days ago" in warnings[0]


def test_a_quarter_is_three_calendar_months() -> None:
    may31 = datetime(2027, 5, 31, 12, 0, tzinfo=TZ)
    assert months_before(may31, 3, TZ) == datetime(2027, 2, 28, 12, 0, tzinfo=TZ)
    assert months_before(datetime(2028, 5, 31, 12, tzinfo=TZ), 3, TZ).day == 29
    assert months_before(datetime(2027, 1, 15, 8, tzinfo=TZ), 3, TZ) == datetime(
        2026, 10, 15, 8, tzinfo=TZ
    )
    feb28 = datetime(2027, 2, 28, 12, tzinfo=TZ)
    assert not review_warnings(record(feb28), may31, TZ)
    assert review_warnings(record(feb28 - timedelta(minutes=1)), may31, TZ)


def test_the_json_form_holds_everything() -> None:
    data = review_at(NOW, record(NOW - timedelta(days=1))).as_json()
    assert data["credentials"] == 11
    assert data["last_review"]["reviewer"] == "boss" and data["warnings"] == []
    first = data["groups"][0]["credentials"][0]
    assert set(first) == {
        "number",
        "kind",
        "state",
        "holder",
        "organisation",
        "sponsor",
        "active",
        "reasons",
        "opens",
        "valid_until",
        "flags",
    }

"""Column types of the schema: instants stored in UTC, the same text on SQLite as SQLAlchemy's
own ``DATETIME`` writes, read back aware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, select
from sqlalchemy.dialects.sqlite import DATETIME

from gateway.store.tables import UtcTimestamp

META = MetaData()
INSTANTS = Table(
    "instants",
    META,
    Column("id", Integer, primary_key=True),
    Column("at", UtcTimestamp),
    Column("reference", DATETIME),
)
ENGINE = create_engine("sqlite://")
META.create_all(ENGINE)

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)


@given(instants)
def test_an_instant_is_stored_on_sqlite_as_sqlalchemys_datetime_text_of_its_utc_time(
    at: datetime,
) -> None:
    with ENGINE.begin() as conn:
        conn.execute(INSTANTS.delete())
        conn.execute(
            INSTANTS.insert(),
            [{"id": 1, "at": at, "reference": at.astimezone(UTC).replace(tzinfo=None)}],
        )
        stored, reference = conn.exec_driver_sql("SELECT at, reference FROM instants").one()
        assert stored == reference
        back = conn.execute(select(INSTANTS.c.at)).scalar_one()
    assert back == at
    assert back.tzinfo is UTC


def test_a_naive_instant_is_refused() -> None:
    with ENGINE.begin() as conn, pytest.raises(Exception, match="naive datetime"):
        conn.execute(INSTANTS.insert(), {"id": 2, "at": datetime(2026, 1, 1)})

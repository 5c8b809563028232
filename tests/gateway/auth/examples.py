"""One valid instance of every command type (the sample story's, plus the ones it lacks)."""

from __future__ import annotations

from datetime import timedelta

from gateway.commands import model as m
from gateway.commands.retention import ApplyRetention
from gateway.commands.review import RecordAccessReview
from tests import sample
from tests.gateway.audit.util import NOW, TODAY

EXTRA: list[m.Command] = [
    m.UnblockId06(card_number="ID06DN0001"),
    m.RemoveCompetence(person_id="p-anna", code="ELSAK"),
    m.ReportCredential(credential_number=sample.TAG_ANNA, outcome="lost"),
    m.ReplaceKey(old_number=sample.KEY_ANNA, new_number=sample.KEY_IN_STOCK),
    m.ChangeVisitorCard(number=sample.VISITOR_CARD, valid_until=NOW + timedelta(days=1)),
    m.ReturnVisitorCard(number=sample.VISITOR_CARD),
    RecordAccessReview(remove=(sample.KEY_ERIK,), note="left the project"),
    ApplyRetention(cutoff=NOW - timedelta(days=730)),
]


def example_commands() -> dict[type[m.Command], m.Command]:
    """Command type -> an instance (the first of its type in the sample story)."""
    out: dict[type[m.Command], m.Command] = {}
    for cmd in [*sample.sample_commands(TODAY), *EXTRA]:
        out.setdefault(type(cmd), cmd)
    missing = set(m.COMMANDS) - set(out)
    assert not missing, f"no example of {missing}"
    return out

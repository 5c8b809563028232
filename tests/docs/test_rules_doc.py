"""docs/rules.md documents every reason code the engine can give, with its meaning."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.rules.reasons import DESCRIPTIONS, REVOCATION_REASONS, Reason

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def test_every_reason_code_is_documented_with_its_meaning() -> None:
    rows = dict(re.findall(r"^\| `([A-Z0-9_]+)` \| (.+?) \|", DOC.read_text(), re.M))
    assert set(rows) == {r.value for r in Reason}
    for reason in Reason:
        assert rows[reason.value] == DESCRIPTIONS[reason]


def test_revocation_codes_are_marked() -> None:
    marked = set(re.findall(r"^\| `([A-Z0-9_]+)` \| .+ \| yes \|$", DOC.read_text(), re.M))
    assert marked == {r.value for r in REVOCATION_REASONS}

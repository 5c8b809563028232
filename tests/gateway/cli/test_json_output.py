"""Every ``--json`` of the command line, found by walking the typer app, run with something to
report: it is JSON, it has rows, and every instant in it is ISO 8601 with ``T`` and a zone."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
import typer

from gateway.cli import app
from gateway.domain.timeutil import utcnow
from gateway.store import device_records as sync_store
from gateway.store.database import Database
from tests import sample
from tests.gateway.cli.util import lockgate, site, token

ROOT = typer.main.get_command(app)

ARGS: dict[tuple[str, ...], list[str]] = {
    ("keys", "show"): [sample.KEY_ANNA],
    ("explain",): [sample.KEY_ANNA, "cylinder:200201"],
    ("orgs", "show"): [sample.MAIN],
    ("persons", "show"): ["p-anna"],
    ("employments", "show"): ["emp-anna"],
    ("agreements", "show"): ["agr-main"],
    ("spaces", "show"): ["sp-office"],
    ("applications", "show"): ["asg-hallsberg"],
    ("retention", "run"): ["--dry-run"],
}
"""Arguments of the commands with required ones (or that change something without them)."""

INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def json_commands() -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in sorted(subs.items()):
                walk(sub, (*path, name))
        elif any("--json" in p.opts for p in cmd.params):
            out.append(path)

    walk(ROOT, ())
    return out


TESTED_WITH_DEVICES = {
    ("devices", "discover"): "tests/gateway/cli/test_devices.py: a simulated UHPPOTE answers",
    ("devices", "install-key"): "tests/gateway/cli/test_devices.py: a simulated OSDP reader",
}
"""``--json`` commands that need a device to report anything, tested with one where named."""

COMMANDS = [p for p in json_commands() if p not in TESTED_WITH_DEVICES]


def instants(value: Any) -> list[str]:
    """Every string in ``value`` that is an instant (a date and a time of day)."""
    if isinstance(value, str):
        return [value] if INSTANT.match(value) else []
    if isinstance(value, dict):
        return [s for v in value.values() for s in instants(v)]
    if isinstance(value, list):
        return [s for v in value for s in instants(v)]
    return []


def something_to_report(db: Database) -> None:
    """The sample site, plus: a revoked key that still holds cylinders and a controller that
    still holds revoked and unknown cards (exposure), a lost employee card (a charge), a
    recorded access review."""
    core = site(db)
    now = utcnow()
    with db.session() as s:
        sync_store.confirm_key(
            s,
            sync_store.KeyConfirmed(
                serial=sample.KEY_DAVID,
                revision="r-old",
                credential_revision=None,
                enabled=True,
                cylinders=sample.CYL_SIGNAL,
                lapses_at=now + timedelta(days=30),
                blacklists={},
                station_id="desk-1",
                confirmed_at=now - timedelta(days=1),
            ),
        )
        sync_store.confirm_controller(
            s, sample.CONTROLLER, "r-old", 1, 1, [sample.TAG_ANNA, "4000099"], 2, now
        )
    core.db.dispose()
    for args, who in (
        (("cards", "lost", sample.TAG_ANNA), "front"),
        (("review", "record", "--yes"), "boss"),
    ):
        done = lockgate(db, *args, operator=who, token=token(who))
        assert done.exit_code == 0, done.stderr


def test_every_json_command_is_known() -> None:
    assert ("report", "exposure") in COMMANDS
    assert set(TESTED_WITH_DEVICES) <= set(json_commands())
    assert len(COMMANDS) >= 25


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_json_with_rows_and_iso_instants(db: Database, path: tuple[str, ...]) -> None:
    something_to_report(db)
    result = lockgate(
        db, *path, *ARGS.get(path, []), "--json", operator="admin", token=token("admin")
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data, f"lockgate {' '.join(path)} --json reported nothing"
    for text in instants(data):
        assert text[10] == "T", f"{text!r} has no T"
        assert datetime.fromisoformat(text).tzinfo is not None, f"{text!r} has no zone"


def test_exposure_names_each_lock_in_one_notation_and_filters_by_any(db: Database) -> None:
    something_to_report(db)
    rows = json.loads(lockgate(db, "report", "exposure", "--json").stdout)
    locks = {(r["credential"], r["lock"]) for r in rows}
    assert {(sample.KEY_DAVID, f"cylinder:{c}") for c in sample.CYL_SIGNAL} <= locks
    assert {("4000099", f"door:{sample.CONTROLLER}/{d}") for d in (1, 2, 3)} <= locks
    for given in ("200201", "cylinder:200201"):
        only = json.loads(lockgate(db, "report", "exposure", "--lock", given, "--json").stdout)
        assert {r["lock"] for r in only} == {"cylinder:200201"}
    for given in ("door:ctrl-office/2", "ctrl-office/2", "ctrl-office:2"):
        only = json.loads(lockgate(db, "report", "exposure", "--lock", given, "--json").stdout)
        assert {r["lock"] for r in only} == {"door:ctrl-office/2"}
        assert {r["credential"] for r in only} >= {"4000099"}
    bad = lockgate(db, "report", "exposure", "--lock", "front door")
    assert bad.exit_code == 2 and "--lock" in bad.stderr

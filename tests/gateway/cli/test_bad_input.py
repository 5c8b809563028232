"""Every command of the command line, found by walking the typer app, refuses bad input with
one line on stderr that names the option or argument, exit code 2, and no change anywhere.

A command added later is covered without touching this file when its parameters are named
like existing ones; a parameter with a new name fails :func:`test_every_parameter_has_a_bad_value`
until a bad value (and, for a required one, a good value) is listed below.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import select

from gateway.cli import app
from gateway.store import migrate
from gateway.store.database import Database
from gateway.store.tables import metadata
from tests import sample
from tests.gateway.cli.util import lockgate, site, token

ROOT = typer.main.get_command(app)


def leaf_commands() -> list[tuple[tuple[str, ...], Any]]:
    """(path, command) of every command of the app that takes no subcommand."""
    out: list[tuple[tuple[str, ...], Any]] = []

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in sorted(subs.items()):
                walk(sub, (*path, name))
        else:
            out.append((path, cmd))

    walk(ROOT, ())
    return out


COMMANDS = leaf_commands()
CONTROL = "text\x01with a control character"


def bad_values(tmp: Path) -> dict[str, list[str]]:
    """Bad values by parameter name (the value the command must refuse)."""
    a_file = tmp / "a-file.txt"
    a_file.write_text("not a folder\n", encoding="utf-8")
    missing = str(tmp / "missing" / "file.csv")
    return {
        # credentials and locks
        "credential": ["abc"],
        "number": ["abc", "1" * 30],
        "args": ["abc"],
        "remove": ["abc"],
        "lock": ["the-front-door", "cylinder:0", "door:ctrl-office/99"],
        # times
        "at": ["tomorrow", "0001-01-01T00:00:00+00:01"],
        "since": ["last week"],
        "until": ["soon"],
        "valid_from": ["now-ish"],
        "delivered_at": ["yesterday"],
        "signed_at": ["2026-13-45T25:00"],
        # identifiers and numbers
        "org_number": ["123", "556036-0794"],
        "org": ["123"],
        "person": ["bad id!"],
        "person_id": ["bad id!"],
        "employment_id": ["bad id!"],
        "agreement_id": ["bad id!"],
        "space_id": ["bad id!"],
        "assignment_id": ["bad id!"],
        "order": ["bad order id!"],
        "order_id": ["bad order id!"],
        "sponsor": ["bad sponsor!"],
        "space": ["bad space!"],
        "name": ["bad name!"],
        "role": ["emperor"],
        "kind": ["spaceship"],
        "reason": ["boredom"],
        "mobile": ["call me"],
        "quantity": ["0", "many"],
        "days": ["-1", "many"],
        "limit": ["0"],
        "revision": ["no-such-revision"],
        # free text: no control characters
        "holder": [CONTROL],
        "company": [CONTROL],
        "address": [CONTROL],
        "note": [CONTROL],
        "title": [CONTROL],
        "display_name": [CONTROL],
        "subject": [CONTROL],
        "actor": [CONTROL],
        "action": [CONTROL],
        # files and folders
        "file": [str(tmp)],  # a folder, where a file is read or written
        "anchor": [missing],
        "receipts": [str(a_file)],
        "out": [str(tmp / "missing" / "x.pdf")],
        "folder": [str(a_file)],
        "docs": [missing],
        "config": [missing],
        "site_file": [missing],
        "key_file": [str(tmp)],  # a folder, where a key file is read
        # the service and the simulators
        "log_format": ["xml"],
        "log_level": ["loud"],
        "station": ["no-such-station"],
        "command": [CONTROL],
        "arguments": ["novalue"],
        "port": ["70000"],
        "host": [CONTROL],
        "control_port": ["-1"],
        "controller_id": ["bad id!"],
        "controller": ["abc", "423187757:3"],
        "events": ["many"],
        "station_id": ["bad id!"],
        "doors": ["0"],
        "capacity": ["0"],
        "transport": ["pigeon"],
        "unit": ["300"],
        "baudrate": ["fast"],
        "baud": ["fast"],
        "timezone": ["Mars/Olympus_Mons"],
        "mounting": ["ceiling"],
        "keys": ["abc"],
        "cylinders": ["abc"],
        "max_payload": ["0"],
        "bind": ["eth0"],
        "timeout": ["0"],
        "door": ["0"],
        # the edge agent
        "site": ["bad site!", "a/b"],
        "state": [str(tmp)],  # a folder, where the agent's SQLite file goes
    }


OVERRIDES = {
    ("schemas", "export", "out"): lambda tmp: [str(tmp / "a-file.txt")],
    # the simulator takes any text for a serial; a serial listed twice it refuses
    ("sim", "station", "keys"): lambda tmp: ["100000001,100000001"],
}
"""Bad values of parameters whose name means something else in one command."""


def bad_values_of(path: tuple[str, ...], name: str, tmp: Path) -> list[str]:
    override = OVERRIDES.get((*path, name))
    return override(tmp) if override else bad_values(tmp).get(name, [])


GOOD_OPTIONAL = {"port": "1883", "until": "2030-01-01T12:00"}
"""Optional parameters given a good value whenever another is bad (checked in a fixed order
by their commands)."""

STATIONS = '[{"id": "desk-1", "driver": "serial-station", "operated": true, "options": {}}]'
"""One configured station, so that ``lockgate station --station X`` has one to compare with."""


def good_values(tmp: Path) -> dict[str, list[str]]:
    """Good values of required parameters, given while another parameter is bad."""
    manifest = tmp / "good.csv"
    manifest.write_text("Nyckelnummer\n100000099\n", encoding="utf-8")
    return {
        "site": ["north"],
        "credential": [sample.KEY_ANNA],
        "number": [sample.VISITOR_CARD],
        "args": ["sign", sample.KEY_FATIMA],
        "until": ["2030-01-01T12:00"],
        "org_number": [sample.MAIN],
        "person_id": ["p-anna"],
        "employment_id": ["emp-anna"],
        "agreement_id": ["agr-main"],
        "space_id": ["sp-office"],
        "assignment_id": ["asg-hallsberg"],
        "order": ["order-main-1"],
        "holder": ["Vera Visitor"],
        "company": ["Hiss AB"],
        "mobile": ["+4670000000"],
        "sponsor": ["emp-anna"],
        "reason": ["supplier"],
        "space": ["sp-office"],
        "name": ["someone"],
        "role": ["auditor"],
        "quantity": ["2"],
        "address": ["Depå 1"],
        "file": [str(manifest)],
        "command": ["help"],
        "controller": ["osdp-hut"],
        "door": ["1"],
    }


FLAGS = ("--in-person", "--return-duty", "--yes", "--once", "--no-mqtt")
"""Flags given whenever a command has them: confirmations that would otherwise be asked for,
and the demo bounded to one run."""


def param_names(param: Any) -> list[str]:
    """How an error may name the parameter."""
    names = [*param.opts, param.name.upper(), param.name]
    if param.metavar:
        names += [m.strip() for m in str(param.metavar).split("|")]
    return [n for n in names if n]


def value_params(cmd: Any) -> list[Any]:
    return [p for p in cmd.params if p.name != "help" and not getattr(p, "is_flag", False)]


def as_args(param: Any, value: str) -> list[str]:
    if param.param_type_name == "argument":
        return [value]
    return [param.opts[0], value]


def invocation(cmd: Any, path: tuple[str, ...], bad: Any, value: str, tmp: Path) -> list[str]:
    """The command with ``bad`` set to ``value`` and every other required parameter good.
    Arguments keep their order."""
    good = good_values(tmp)
    args: list[str] = list(path)
    for p in cmd.params:
        if p is bad:
            args += as_args(p, value)
        elif p.required and p.name != "help":
            for v in good[p.name][: 1 if p.param_type_name != "argument" else None]:
                args += as_args(p, v)
        elif p.name in GOOD_OPTIONAL:
            args += as_args(p, GOOD_OPTIONAL[p.name])
    for flag in FLAGS:
        if any(flag in p.opts or flag in getattr(p, "secondary_opts", []) for p in cmd.params):
            args.append(flag)
    return args


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, Path]]:
    """One SQLite database with the sample site, for every command (none may change it)."""
    tmp = tmp_path_factory.mktemp("bad-input")
    url = f"sqlite:///{tmp}/lockgate.db"
    migrate.upgrade(url)
    db = Database(url)
    try:
        site(db)
        yield db, tmp
    finally:
        db.dispose()


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    with db.session(readonly=True) as s:
        return {
            t.name: sorted((tuple(r) for r in s.connection().execute(select(t))), key=repr)
            for t in metadata.sorted_tables
        }


def check_refused(
    db: Database, args: list[str], names: list[str], value: str | None = None
) -> None:
    """``lockgate ARGS`` exits 2 with one line on stderr naming one of ``names`` (or quoting
    the bad ``value``), and the database is as it was. ``lockgate run`` and ``lockgate agent``
    log, so their one line is a structured log line at level error."""
    before = snapshot(db)
    result = lockgate(
        db, *args, operator="admin", token=token("admin"), env={"LOCKGATE_STATIONS": STATIONS}
    )
    shown = " ".join(args)
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, f"lockgate {shown!r}: exit {result.exit_code}: {result.stderr}"
    assert len(lines) == 1, f"lockgate {shown!r}: not one line: {result.stderr}"
    assert lines[0].startswith("error: ") or (
        args[0] in ("run", "agent") and " level=error " in lines[0]
    ), f"lockgate {shown!r}: {lines[0]}"
    assert "Traceback" not in result.output + result.stderr
    quoted = [value, repr(value)] if value is not None else []
    assert any(n in lines[0] for n in [*names, *quoted]), (
        f"lockgate {shown!r}: {lines[0]} names none of {names}"
    )
    assert snapshot(db) == before, f"lockgate {shown!r} changed the database"


def test_every_parameter_has_a_bad_value(tmp_path: Path) -> None:
    bad, good = bad_values(tmp_path), good_values(tmp_path)
    missing = sorted(
        {
            f"{' '.join(path)} {p.name}"
            for path, cmd in COMMANDS
            for p in value_params(cmd)
            if p.name not in bad or (p.required and p.name not in good)
        }
    )
    assert not missing, f"list bad (and for required ones good) values for: {missing}"


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_each_command_refuses_bad_input_in_one_line(
    loaded: tuple[Database, Path], path: tuple[str, ...], cmd: Any
) -> None:
    db, tmp = loaded
    check_refused(db, [*path, "--no-such-option"], ["--no-such-option"])
    required = [p for p in value_params(cmd) if p.required]
    if required:
        check_refused(db, list(path), [n for p in required for n in param_names(p)])
    for param in value_params(cmd):
        for value in bad_values_of(path, param.name, tmp):
            check_refused(db, invocation(cmd, path, param, value, tmp), param_names(param), value)


def test_receipt_sign_of_a_malformed_number_is_one_line(loaded: tuple[Database, Path]) -> None:
    db, _ = loaded
    check_refused(db, ["receipt", "sign", "abc"], ["KEY"])
    check_refused(db, ["receipt", "sign"], ["KEY"])
    check_refused(db, ["receipt", "sign", "1", "2"], ["KEY"])

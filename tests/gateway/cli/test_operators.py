"""``lockgate operator``: bootstrap, add, list, roles, and authentication of every change."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import sys
import time

from gateway.audit import log as audit_log
from gateway.auth.roles import role_table
from gateway.store.database import Database
from tests.gateway.cli.util import lockgate, site, token

ADMIN_PASSWORD = "a long admin password"


def entries(db: Database, action: str) -> list[audit_log.Entry]:
    with db.session(readonly=True) as s:
        return audit_log.entries(s, action=action)


def test_bootstrap_creates_the_first_administrator_once(db: Database) -> None:
    weak = lockgate(db, "operator", "bootstrap", "admin", env={"LOCKGATE_NEW_PASSWORD": "short"})
    assert weak.exit_code == 2 and "password: must be at least 12 characters" in weak.stderr
    out = lockgate(
        db,
        "operator",
        "bootstrap",
        "admin",
        "--display-name",
        "Ada Admin",
        env={"LOCKGATE_NEW_PASSWORD": ADMIN_PASSWORD},
    )
    assert out.exit_code == 0, out.stderr
    again = lockgate(
        db, "operator", "bootstrap", "eve", env={"LOCKGATE_NEW_PASSWORD": ADMIN_PASSWORD}
    )
    assert again.exit_code == 1 and "operators exist already" in again.stderr
    listed = json.loads(lockgate(db, "operator", "list", "--json").stdout)
    assert [(o["name"], o["role"], o["authenticates_with"]) for o in listed] == [
        ("admin", "administrator", "password")
    ]
    assert "hash" not in json.dumps(listed)


def test_changes_need_a_named_and_authenticated_operator(db: Database) -> None:
    first = lockgate(
        db,
        "cards",
        "change",
        "5000001",
        "--until",
        "2030-01-01T12:00",
        operator="admin",
        env={"LOCKGATE_PASSWORD": ADMIN_PASSWORD},
    )
    assert first.exit_code == 1
    assert "no operator exists yet" in first.stderr and "operator bootstrap" in first.stderr
    site(db)
    unnamed = lockgate(db, "cards", "change", "5000001", "--until", "2030-01-01T12:00")
    assert unnamed.exit_code == 2 and "--operator NAME" in unnamed.stderr
    nothing = lockgate(
        db, "cards", "change", "5000001", "--until", "2030-01-01T12:00", operator="desk"
    )
    assert nothing.exit_code == 1 and "set LOCKGATE_PASSWORD" in nothing.stderr
    wrong = lockgate(
        db,
        "cards",
        "change",
        "5000001",
        "--until",
        "2030-01-01T12:00",
        operator="desk",
        token="not-the-token",
    )
    assert wrong.exit_code == 1 and "operator desk: authentication failed" in wrong.stderr
    assert [(e.actor, e.data) for e in entries(db, "auth.failed")] == [
        ("desk", {"method": "token"})
    ]
    ok = lockgate(
        db,
        "cards",
        "change",
        "5000001",
        "--until",
        "2030-01-01T12:00",
        operator="desk",
        token=token("desk"),
    )
    assert ok.exit_code == 0, ok.stderr
    # read-only commands need no password
    assert lockgate(db, "keys", "show", "5000001", "--json").exit_code == 0


def test_an_administrator_adds_a_machine_operator_whose_token_is_shown_once(
    db: Database,
) -> None:
    site(db)
    out = lockgate(
        db,
        "operator",
        "add",
        "central",
        "--role",
        "system",
        "--token",
        operator="admin",
        token=token("admin"),
    )
    assert out.exit_code == 0, out.stderr
    new_token = out.stdout.strip().splitlines()[-1]
    assert new_token.startswith("lgt_")
    listed = lockgate(db, "operator", "list", "--json").stdout
    assert new_token not in listed
    blocked = lockgate(db, "keys", "list", "--json")  # sanity: read-only works
    assert blocked.exit_code == 0
    used = lockgate(db, "cards", "lost", "5000001", operator="central", token=new_token)
    assert used.exit_code == 0, used.stderr
    assert "no charge" in used.stdout
    denied = lockgate(
        db,
        "operator",
        "add",
        "x",
        "--role",
        "auditor",
        "--token",
        operator="desk",
        token=token("desk"),
    )
    assert denied.exit_code == 1
    assert "FORBIDDEN" in denied.stderr and "may not manage_operators" in denied.stderr
    [refusal] = [e for e in entries(db, "operator.add") if e.actor == "desk"]
    assert refusal.data["status"] == "refused"


def test_disable_enable_and_roles(db: Database) -> None:
    site(db)
    assert (
        lockgate(
            db, "operator", "disable", "desk", operator="admin", token=token("admin")
        ).exit_code
        == 0
    )
    refused = lockgate(db, "cards", "return", "5000001", operator="desk", token=token("desk"))
    assert refused.exit_code == 1 and "authentication failed" in refused.stderr
    assert (
        lockgate(db, "operator", "enable", "desk", operator="admin", token=token("admin")).exit_code
        == 0
    )
    last = lockgate(
        db, "operator", "set", "admin", "--role", "auditor", operator="admin", token=token("admin")
    )
    assert last.exit_code == 1 and "last active administrator" in last.stderr
    roles = json.loads(lockgate(db, "operator", "roles", "--json").stdout)
    assert {k: v["actions"] for k, v in roles["roles"].items()} == dict(role_table())
    assert roles["titles"] == {"operations manager": ["record_access_review"]}


def test_a_password_is_typed_at_a_real_terminal(db: Database) -> None:
    """getpass at a pseudo-terminal: the password is asked for, not echoed, and accepted."""
    site(db)
    out = lockgate(
        db,
        "operator",
        "add",
        "kari",
        "--role",
        "reception",
        operator="admin",
        token=token("admin"),
        env={"LOCKGATE_NEW_PASSWORD": "kari's password 1"},
    )
    assert out.exit_code == 0, out.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    argv = [
        sys.executable,
        "-c",
        "from gateway.cli import main; main()",
        "--db",
        db.url,
        "--operator",
        "kari",
        "cards",
        "change",
        "5000001",
        "--until",
        "2031-01-01T12:00",
    ]
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session with the pty as its controlling terminal
        os.execve(sys.executable, argv, env)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while b"password of operator kari:" not in seen:
            assert time.monotonic() < deadline, seen
            if select.select([fd], [], [], 0.5)[0]:
                seen += os.read(fd, 1024)
        os.write(fd, b"kari's password 1\n")
        while True:
            assert time.monotonic() < deadline, seen
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    chunk = os.read(fd, 1024)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
    finally:
        os.close(fd)  # the child gets a hang-up if it still waits for the terminal
        stop_at = time.monotonic() + 10
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > stop_at:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert b"kari's password" not in seen  # not echoed
    plain = re.sub(rb"\x1b\[[0-9;]*m", b"", seen)
    assert b"visitor card 5000001 now valid until 2031-01-01 12:00" in plain

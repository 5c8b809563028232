"""The roles as data: consistent with the commands, the schema and the documentation."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from gateway.auth import roles as r
from gateway.commands.model import COMMANDS
from gateway.store.tables import OPERATOR_ROLES

ROOT = Path(__file__).resolve().parents[3]


def test_every_command_action_is_a_known_action_held_by_some_role() -> None:
    for command in COMMANDS:
        assert command.action in r.ACTIONS
        assert any(role.allows(command.action) for role in r.ROLES.values())


def test_the_decided_roles_hold_exactly_their_actions() -> None:
    actions = {name: set(role.actions) - {r.READ_LOG} for name, role in r.ROLES.items()}
    assert actions["administrator"] == set(r.ACTIONS) - {r.READ_LOG}
    assert actions["issuer"] == {"issue_credentials", "link_credentials", "change_credentials"}
    assert actions["reception"] == {"change_credentials"}
    assert actions["access_administrator"] == {
        "link_credentials",
        "manage_spaces",
        "manage_master_data",
        "block_id06",
    }
    assert actions["project_manager"] == {"decide_applications"}
    assert actions["hr"] == {"approve_employee_cards"}
    assert actions["auditor"] == set()
    assert actions["system"] == set(r.FACT_ACTIONS)
    assert actions["maintenance"] == {r.RUN_RETENTION}


def test_every_role_reads_the_log_and_only_administrators_manage_operators() -> None:
    for name, role in r.ROLES.items():
        assert role.allows(r.READ_LOG)
        assert role.allows(r.MANAGE_OPERATORS) == (name == "administrator")


def test_an_operations_manager_title_adds_the_access_review() -> None:
    assert r.RECORD_ACCESS_REVIEW not in r.allowed_actions("reception")
    for title in ("Operations Manager", "operations-manager", "  operations   manager "):
        assert r.RECORD_ACCESS_REVIEW in r.allowed_actions("reception", title)
    assert r.RECORD_ACCESS_REVIEW not in r.allowed_actions("reception", "operations technician")


def test_every_action_is_described() -> None:
    assert set(r.ACTION_DESCRIPTIONS) == set(r.ACTIONS)


def test_the_schema_and_the_migration_know_exactly_the_roles() -> None:
    assert set(OPERATOR_ROLES) == set(r.ROLES)
    path = ROOT / "gateway/store/migrations/versions/0003_audit.py"
    spec = importlib.util.spec_from_file_location("migration_0003", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.ROLES) == set(r.ROLES)


def test_the_documented_role_table_is_the_one_in_the_code() -> None:
    """docs/security.md holds the table of role -> actions; it must match the code."""
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    documented: dict[str, set[str]] = {}
    for line in text.splitlines():
        m = re.match(r"^\|\s*`([a-z_]+)`\s*\|(.*)\|\s*$", line)
        if m and m.group(1) in r.ROLES:
            documented[m.group(1)] = set(re.findall(r"`([a-z0-9_]+)`", m.group(2)))
    assert documented == {name: set(actions) for name, actions in r.role_table()}

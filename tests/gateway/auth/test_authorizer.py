"""The role check, pure: every operator x command pair decided as the role table says."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.auth import roles as r
from gateway.auth.authorizer import Forbidden, check_action, check_command
from gateway.auth.operators import Operator
from gateway.commands import model as m
from tests.gateway.audit.util import NOW
from tests.gateway.auth.examples import example_commands

EXAMPLES = example_commands()
TITLES = (None, "operations manager", "Operations-Manager", "receptionist", "managing director")
MANAGER = "Karin Sjöberg"  # the sample story's project manager


def operator(
    role: str, title: str | None = None, *, display_name: str = "Someone Else", active: bool = True
) -> Operator:
    return Operator(
        name=f"op-{role}",
        display_name=display_name,
        role=role,
        title=title,
        active=active,
        password_hash=None,
        token_hash="x" * 64,
        created_at=NOW,
        created_by="test",
        changed_at=NOW,
    )


def manager_of(assignment_id: str) -> str | None:
    return MANAGER if assignment_id.startswith("asg-") else None


def allowed(op: Operator, command: m.Command) -> bool:
    try:
        check_command(op, command, manager_of)
    except Forbidden:
        return False
    return True


@given(
    role=st.sampled_from(sorted(r.ROLES)),
    title=st.sampled_from(TITLES),
    kind=st.sampled_from(sorted(EXAMPLES, key=lambda k: k.name)),
    manages=st.booleans(),
)
def test_every_operator_and_command_pair_is_decided_by_the_role_table(
    role: str, title: str | None, kind: type[m.Command], manages: bool
) -> None:
    op = operator(role, title, display_name=MANAGER if manages else "Someone Else")
    command = EXAMPLES[kind]
    expected = kind.action in r.allowed_actions(role, title)
    if role == r.PROJECT_MANAGER and kind.action == "decide_applications":
        expected = manages  # only their own assignments
    assert allowed(op, command) == expected


@given(role=st.sampled_from(sorted(r.ROLES)), kind=st.sampled_from(list(EXAMPLES)))
def test_a_disabled_operator_may_do_nothing(role: str, kind: type[m.Command]) -> None:
    assert not allowed(operator(role, active=False), EXAMPLES[kind])


def test_a_refusal_names_the_operator_the_role_and_the_action() -> None:
    with pytest.raises(Forbidden) as exc:
        check_command(operator("reception"), EXAMPLES[m.IssueVisitorCard], manager_of)
    assert exc.value.code == "FORBIDDEN"
    assert exc.value.message == "operator op-reception (role reception) may not issue_credentials"


def test_a_project_manager_decides_only_applications_of_their_assignments() -> None:
    app = EXAMPLES[m.PutApplication]
    assert isinstance(app, m.PutApplication)
    mine = operator("project_manager", display_name="  karin   SJÖBERG ")
    check_command(mine, app, manager_of)
    with pytest.raises(Forbidden, match="does not manage assignment asg-hallsberg") as exc:
        check_command(operator("project_manager"), app, manager_of)
    assert MANAGER not in exc.value.message  # no person's name in a logged refusal
    unknown = app.model_copy(
        update={"application": app.application.model_copy(update={"assignment_id": "other"})}
    )
    with pytest.raises(Forbidden, match="assignment other is not registered"):
        check_command(mine, unknown, manager_of)


def test_non_command_actions_follow_the_table() -> None:
    check_action(operator("auditor"), r.READ_LOG)
    with pytest.raises(Forbidden):
        check_action(operator("issuer"), r.MANAGE_OPERATORS)
    check_action(operator("auditor", "Operations Manager"), r.RECORD_ACCESS_REVIEW)
    with pytest.raises(Forbidden):
        check_action(operator("issuer", "operations technician"), r.RECORD_ACCESS_REVIEW)

"""Which command fields are personal (erasable) and which ids an entry is about."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gateway.audit.fields import NOT_PERSONAL, PERSONAL_FIELDS, command_subjects, split_command
from gateway.commands import model as m
from tests.gateway.auth.examples import example_commands

LOOKS_PERSONAL = ("name", "mobile", "company", "holder", "manager", "reason", "note", "address")


def leaf_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every field path of a model, following nested models (in tuples too)."""
    out: list[str] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        nested = _model_in(field.annotation)
        if nested is not None:
            out += leaf_paths(nested, f"{path}.")
        else:
            out.append(path)
    return out


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def test_every_field_that_looks_personal_has_a_decision() -> None:
    undecided = []
    for kind in example_commands():
        decided = set(PERSONAL_FIELDS.get(kind, ())) | set(NOT_PERSONAL.get(kind, ()))
        for path in leaf_paths(kind):
            leaf = path.rsplit(".", 1)[-1]
            if any(word in leaf for word in LOOKS_PERSONAL) and path not in decided:
                undecided.append(f"{kind.__name__}.{path}")
    assert undecided == []


def test_personal_fields_leave_the_data() -> None:
    examples = example_commands()
    data, personal = split_command(examples[m.IssueVisitorCard])
    assert personal == {
        "holder_name": "Helena Berg",
        "company": "Hissservice AB",
        "mobile": "+46709990001",
    }
    assert not {"holder_name", "company", "mobile"} & data.keys()
    assert data["sponsor_employment_id"] == "emp-anna" and data["reason"] == "supplier"
    data, personal = split_command(examples[m.PutPerson])
    assert data == {"person": {"id": "p-anna"}}
    assert personal == {
        "person": {"first_name": "Anna", "last_name": "Lindqvist", "mobile": "+46701110001"}
    }
    data, personal = split_command(examples[m.PutOrganisation])
    assert personal is None and data["organisation"]["name"] == "Banbyggarna i Mälardalen AB"


def test_subjects_name_every_id_a_command_touches() -> None:
    examples = example_commands()
    assert command_subjects(examples[m.IssueVisitorCard]) == [
        "credential 5000001",
        "employment emp-anna",
    ]
    assert "person p-anna" in command_subjects(examples[m.PutEmployment])
    assert "employment emp-anna" in command_subjects(examples[m.PutEmployment])
    app_subjects = command_subjects(examples[m.PutApplication])
    assert app_subjects[0] == "assignment asg-hallsberg"
    assert "employment emp-erik" in app_subjects
    delivery = command_subjects(examples[m.RegisterDelivery])
    assert "key order order-main-1" in delivery and "credential 100000001" in delivery
    assert command_subjects(examples[m.ReplaceKey]) == [
        "credential 100000001",
        "credential 100000008",
    ]

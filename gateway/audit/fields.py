"""What of a command goes into an audit entry's ``data``, what into ``personal``, and which
subjects (ids) the entry is about.

Personal fields are listed per command type by their dotted path in the command's JSON form.
Everything else is logged as data. A test walks every command's fields and fails when one that
looks personal (a name, a mobile, a company, free text) is neither listed here nor in
:data:`NOT_PERSONAL`, so a new field needs a decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from gateway.commands import model as m
from gateway.commands.retention import ApplyRetention
from gateway.commands.review import RecordAccessReview

PERSONAL_FIELDS: dict[type[m.Command], tuple[str, ...]] = {
    m.PutPerson: ("person.first_name", "person.last_name", "person.mobile"),
    # The owner's project manager is named by a person's name.
    m.PutAssignment: ("assignment.project_manager",),
    # Free text from the blocking register ("reported lost by the card holder").
    m.BlockId06: ("reason",),
    m.IssueVisitorCard: ("holder_name", "company", "mobile"),
    # The reviewer's free-text note.
    RecordAccessReview: ("note",),
    ApplyRetention: (),
}
"""Command type -> the dotted paths of its personal fields (every command type: a test fails
on one missing)."""

NOT_PERSONAL: Final[dict[type[m.Command], tuple[str, ...]]] = {
    m.PutOrganisation: ("organisation.name",),  # a company
    m.PutSpace: ("space.name",),
    m.PutAssignment: ("assignment.name",),  # a project
    m.PlaceKeyOrder: ("order.delivery_address",),  # a company's delivery address
    m.IssueVisitorCard: ("reason",),  # forgot_card / new_employee / supplier
}
"""Command type -> paths that look personal by their name but are not (the test above)."""


def _pop(tree: dict[str, Any], path: list[str]) -> tuple[bool, Any]:
    """Remove ``path`` from ``tree`` (a copy: every mapping on the path is copied before it
    changes, so the dumped command others share stays whole)."""
    node: Any = tree
    for part in path[:-1]:
        child = node.get(part) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            return False, None
        child = dict(child)
        node[part] = child
        node = child
    if not isinstance(node, dict) or path[-1] not in node:
        return False, None
    return True, node.pop(path[-1])


def _put(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def split_command(
    command: m.Command, dumped: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The command's fields as (data, personal): personal fields move to the second part
    (``None`` when the command has none, or all of them are empty). ``dumped`` is the
    command's ``model_dump(mode="json")`` when the caller has it; it is not changed."""
    data = dict(dumped if dumped is not None else command.model_dump(mode="json"))
    personal: dict[str, Any] = {}
    for path in PERSONAL_FIELDS.get(type(command), ()):
        parts = path.split(".")
        found, value = _pop(data, parts)
        if found and value not in (None, ""):
            _put(personal, parts, value)
    return data, (personal or None)


_REFERENCE_KEYS: Final[dict[str, str]] = {
    "credential_number": "credential",
    "number": "credential",
    "old_number": "credential",
    "new_number": "credential",
    "numbers": "credential",
    "key_serials": "credential",
    "employment_id": "employment",
    "sponsor_employment_id": "employment",
    "person_id": "person",
    "assignment_id": "assignment",
    "order_id": "key order",
}
"""Field name -> the subject kind its value (or each of its values) names."""

_FACT_FIELDS: Final[dict[str, tuple[str, str]]] = {
    "organisation": ("organisation", "org_number"),
    "agreement": ("agreement", "id"),
    "person": ("person", "id"),
    "employment": ("employment", "id"),
    "space": ("space", "id"),
    "assignment": ("assignment", "id"),
    "order": ("key order", "id"),
}
"""Top-level fact field of a command -> (subject kind, its id field)."""


def _references(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            kind = _REFERENCE_KEYS.get(key)
            if kind is not None:
                values = value if isinstance(value, list) else [value]
                out.extend(f"{kind} {v}" for v in values if isinstance(v, str | int) and v != "")
            elif isinstance(value, dict | list):
                _references(value, out)
    elif isinstance(node, list):
        for item in node:
            _references(item, out)


def command_subjects(
    command: m.Command,
    handler_subjects: Iterable[str] = (),
    dumped: dict[str, Any] | None = None,
) -> list[str]:
    """What an entry about ``command`` is about: the subjects its handler named, then the
    fact it writes and every credential, employment, person, assignment and key order its
    fields refer to (so a refused command is found under the same subjects). ``dumped`` as
    for :func:`split_command`."""
    out = list(handler_subjects)
    data = dumped if dumped is not None else command.model_dump(mode="json")
    for name, (kind, id_field) in _FACT_FIELDS.items():
        fact = data.get(name)
        if isinstance(fact, dict) and fact.get(id_field):
            out.append(f"{kind} {fact[id_field]}")
    _references(data, out)
    return out


__all__ = [
    "NOT_PERSONAL",
    "PERSONAL_FIELDS",
    "command_subjects",
    "split_command",
]

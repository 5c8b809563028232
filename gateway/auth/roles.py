"""Operator roles, as data: which actions each role allows.

An *action* is what an operator's role must allow. Every command has one (``Command.action``:
``issue_credentials``, ``change_credentials``, ...); a few operator actions are not commands
(managing operators, recording an access review, running the retention job, reading the log).

The roles follow the seeds (``DOMAIN.md`` §1 and §2):

- ``administrator`` may do everything and is the only role that manages operators;
- ``issuer`` (managing director, operations manager, receptionist, operations technician)
  issues *new* credentials (register stock, place key orders, issue visitor cards, hand a
  key or tag out to its holder) and changes existing ones;
- ``reception`` only *changes existing* credentials: extends or shortens a visitor card,
  records a return or a loss;
- ``access_administrator`` links keys to people and activates them, manages spaces and
  master data, blocks ID06 cards;
- ``project_manager`` decides access applications, but only of the assignments whose
  ``project_manager`` is the operator's display name (see :mod:`gateway.auth.authorizer`);
- ``hr`` approves employee cards;
- ``auditor`` reads the log;
- ``system`` is a central system (over MQTT): every fact action, nothing else;
- ``maintenance`` runs the retention job (a machine operator driving ``lockgate retention
  run`` from a scheduler; the gateway's own retention service acts as the built-in
  operator ``lockgate-retention`` with this role).

Every role may read the log (the seed: everyone who operates the access system has access
to it). An operator's *title* can add actions too: an operator titled "operations manager"
records access reviews whatever the role (the seed: the operations manager reviews every
card and its access at least quarterly).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from gateway.commands.model import COMMANDS
from gateway.commands.retention import ApplyRetention
from gateway.commands.review import RecordAccessReview

FACT_ACTIONS: Final[tuple[str, ...]] = tuple(sorted({c.action for c in COMMANDS}))
"""Actions of the commands that change facts (one per :data:`~gateway.commands.model.COMMANDS`
action)."""

MANAGE_OPERATORS: Final = "manage_operators"
MANAGE_DEVICES: Final = "manage_devices"
READ_LOG: Final = "read_log"
RECORD_ACCESS_REVIEW: Final = RecordAccessReview.action
RUN_RETENTION: Final = ApplyRetention.action

OPERATOR_ACTIONS: Final[tuple[str, ...]] = (
    MANAGE_OPERATORS,
    MANAGE_DEVICES,
    READ_LOG,
    RECORD_ACCESS_REVIEW,
    RUN_RETENTION,
)
"""Actions that are not fact commands."""

ACTIONS: Final[tuple[str, ...]] = FACT_ACTIONS + OPERATOR_ACTIONS
"""Every action an operator can be allowed."""

ACTION_DESCRIPTIONS: Final[dict[str, str]] = {
    "manage_master_data": "register organisations, agreements, persons, employments, "
    "competences and assignments",
    "block_id06": "block and unblock ID06 cards",
    "manage_spaces": "register and change spaces (cylinders, doors, required competences)",
    "decide_applications": "submit and decide access applications",
    "issue_credentials": "issue new credentials: key orders, deliveries, tags in stock, "
    "visitor cards",
    "link_credentials": "hand keys and tags out to an employment, record signed receipts "
    "(activation), replace keys",
    "approve_employee_cards": "approve employee cards (HR)",
    "change_credentials": "change existing credentials: extend or shorten a visitor card, "
    "record a return or a loss",
    MANAGE_OPERATORS: "add, change and disable operators",
    MANAGE_DEVICES: "device maintenance: install an OSDP reader's own secure-channel key",
    READ_LOG: "read the audit log",
    RECORD_ACCESS_REVIEW: "record a quarterly access review and revoke what it removes",
    RUN_RETENTION: "run the retention job (erase personal data past the retention period)",
}


@dataclass(frozen=True, slots=True)
class Role:
    """A role: its name, who holds it (for people) and the actions it allows."""

    name: str
    description: str
    actions: frozenset[str]

    def allows(self, action: str) -> bool:
        return action in self.actions


def _role(name: str, description: str, actions: Iterable[str]) -> Role:
    allowed = frozenset(actions) | {READ_LOG}
    unknown = allowed - set(ACTIONS)
    if unknown:
        raise ValueError(f"role {name}: unknown actions {sorted(unknown)}")
    return Role(name, description, allowed)


ROLES: Final[dict[str, Role]] = {
    r.name: r
    for r in (
        _role("administrator", "everything; the only role that manages operators", ACTIONS),
        _role(
            "issuer",
            "managing director, operations manager, receptionist, operations technician: "
            "issue new credentials and change existing ones",
            ("issue_credentials", "link_credentials", "change_credentials"),
        ),
        _role(
            "reception",
            "reception staff: only change existing credentials (extend or shorten a visitor "
            "card, record a return)",
            ("change_credentials",),
        ),
        _role(
            "access_administrator",
            "link keys to people, activate keys, manage spaces and master data, block ID06",
            ("link_credentials", "manage_spaces", "manage_master_data", "block_id06"),
        ),
        _role(
            "project_manager",
            "decide the access applications of the assignments they manage",
            ("decide_applications",),
        ),
        _role("hr", "HR department: approve employee cards", ("approve_employee_cards",)),
        _role("auditor", "read the log and the reports", ()),
        _role("system", "a central system over MQTT: every fact action", FACT_ACTIONS),
        _role("maintenance", "a scheduler running the retention job", (RUN_RETENTION,)),
    )
}
"""Every role by name."""

ADMINISTRATOR: Final = "administrator"
PROJECT_MANAGER: Final = "project_manager"

OPERATIONS_MANAGER_TITLE: Final = "operations manager"

TITLE_ACTIONS: Final[dict[str, frozenset[str]]] = {
    OPERATIONS_MANAGER_TITLE: frozenset({RECORD_ACCESS_REVIEW}),
}
"""Actions an operator's title adds to its role (titles compared case-insensitively, with
runs of spaces, hyphens and underscores read as one space)."""

SCOPED_ACTIONS: Final[dict[str, str]] = {
    PROJECT_MANAGER: "decide_applications",
}
"""Role -> the action that role holds only for its own assignments."""


def normalize_title(title: str | None) -> str:
    """A title as compared: lower case, separators collapsed to one space."""
    if not title:
        return ""
    return " ".join(title.replace("-", " ").replace("_", " ").lower().split())


def allowed_actions(role: str, title: str | None = None) -> frozenset[str]:
    """Every action an operator with ``role`` and ``title`` may perform."""
    base = ROLES[role].actions
    return base | TITLE_ACTIONS.get(normalize_title(title), frozenset())


def role_table() -> list[tuple[str, list[str]]]:
    """(role, sorted actions) for every role, in the order of :data:`ROLES`: the table shown
    by ``lockgate operator roles`` and documented in ``docs/security.md``."""
    return [(name, sorted(role.actions)) for name, role in ROLES.items()]


__all__ = [
    "ACTIONS",
    "ACTION_DESCRIPTIONS",
    "ADMINISTRATOR",
    "FACT_ACTIONS",
    "MANAGE_OPERATORS",
    "OPERATIONS_MANAGER_TITLE",
    "OPERATOR_ACTIONS",
    "PROJECT_MANAGER",
    "READ_LOG",
    "RECORD_ACCESS_REVIEW",
    "ROLES",
    "RUN_RETENTION",
    "SCOPED_ACTIONS",
    "TITLE_ACTIONS",
    "Role",
    "allowed_actions",
    "normalize_title",
    "role_table",
]

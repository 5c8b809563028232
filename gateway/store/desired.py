"""Derived state kept for the sync engine, reports and MQTT state topics.

The rules engine derives, from the facts, the state every credential and every door controller
must have, and the blacklist every offline cylinder must hold. Each carries a ``revision`` (a
digest of its content, computed by the rules engine) so the sync engine can compare it with the
revision a device last confirmed. ``body`` is the derived state itself as a JSON object (see
:func:`~gateway.store.tables.check_json_object`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Row, insert, select, update
from sqlalchemy.orm import Session

from gateway.store.repository import Repository
from gateway.store.tables import (
    check_json_object,
    controller_state,
    credential_state,
    cylinder_blacklist,
)

__all__ = [
    "CredentialStateSummary",
    "StoredBlacklist",
    "StoredControllerState",
    "StoredCredentialState",
    "all_blacklists",
    "all_controller_states",
    "all_credential_states",
    "credential_numbers",
    "credential_state_summaries",
    "delete_controller_state",
    "delete_credential_state",
    "get_blacklist",
    "get_controller_state",
    "get_credential_state",
    "put_blacklist",
    "put_controller_state",
    "put_credential_state",
]

MAX_REVISION = 128


def _check_text(field: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{field}: must be a string, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{field}: must not be empty")
    if len(value) > limit:
        raise ValueError(f"{field}: at most {limit} characters, got {len(value)}")
    if not value.isprintable():
        raise ValueError(f"{field}: must not contain control characters")
    return value


def _check_aware(field: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{field}: must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field}: must carry a time zone")
    return value


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class StoredCredentialState:
    """The desired state of one credential: ``active`` says whether it may open anything at
    all; ``body`` holds the derived details (validity, schedule, cylinders, doors)."""

    number: str
    kind: str
    revision: str
    active: bool
    body: dict[str, Any]
    computed_at: datetime


def _credential_state(row: Row[Any]) -> StoredCredentialState:
    return StoredCredentialState(
        number=row.number,
        kind=row.kind,
        revision=row.revision,
        active=row.active,
        body=row.body,
        computed_at=row.computed_at,
    )


_CREDENTIAL_STATES = Repository(credential_state, "number", _credential_state)


def _credential_row(state: StoredCredentialState) -> dict[str, Any]:
    _check_text("number", state.number, 10)
    if not state.number.isascii() or not state.number.isdigit():
        raise ValueError(f"number: must be digits, got {state.number!r}")
    _check_text("kind", state.kind, 20)
    _check_text("revision", state.revision, MAX_REVISION)
    if not isinstance(state.active, bool):
        raise TypeError(f"active: must be a bool, got {type(state.active).__name__}")
    check_json_object("body", state.body)
    _check_aware("computed_at", state.computed_at)
    return {
        "number": state.number,
        "kind": state.kind,
        "revision": state.revision,
        "active": state.active,
        "body": state.body,
        "computed_at": state.computed_at,
    }


def put_credential_state(session: Session, state: StoredCredentialState) -> None:
    """Store ``state``, replacing the stored state of the same credential number."""
    _CREDENTIAL_STATES.upsert(session, _credential_row(state))


def put_credential_states(session: Session, states: Sequence[StoredCredentialState]) -> None:
    """:func:`put_credential_state` for many states, in one statement."""
    rows = [_credential_row(state) for state in states]
    if rows:
        _CREDENTIAL_STATES.upsert(session, rows)


def get_credential_state(session: Session, number: str) -> StoredCredentialState | None:
    """The stored desired state of credential ``number``, or None."""
    return _CREDENTIAL_STATES.get(session, number)


def all_credential_states(session: Session) -> list[StoredCredentialState]:
    """Every stored credential state, by number."""
    return _CREDENTIAL_STATES.all(session)


class CredentialStateSummary(NamedTuple):
    """What start-up compares of a stored credential state: its revision, whether it is
    active and its reasons (without reading the rest of its body). A tuple: start-up
    compares it with the engine's ``(revision, active, reasons)`` in one comparison."""

    revision: str
    active: bool
    reasons: tuple[str, ...] | None


def credential_state_summaries(session: Session) -> dict[str, CredentialStateSummary]:
    """Every stored credential state's :class:`CredentialStateSummary`, by number: one
    statement reading the reasons out of the body in the database, as JSON text; a site
    repeats a few lists of reasons, each parsed once."""
    c = credential_state.c
    rows = session.connection().execute(
        select(c.number, c.revision, c.active, c.body["reasons"].as_string()).order_by(c.number)
    )
    parsed: dict[str | None, tuple[str, ...] | None] = {None: None}
    summaries: dict[str, CredentialStateSummary] = {}
    for number, revision, active, text in rows:
        reasons = parsed.get(text, _UNPARSED)
        if reasons is _UNPARSED:
            loaded = json.loads(text)
            reasons = parsed[text] = None if loaded is None else tuple(loaded)
        summaries[number] = CredentialStateSummary(revision, bool(active), reasons)
    return summaries


_UNPARSED: tuple[str, ...] = ("<unparsed>",)


def credential_numbers(session: Session) -> list[str]:
    """The numbers of every stored credential state, in order."""
    c = credential_state.c
    return list(session.connection().execute(select(c.number).order_by(c.number)).scalars())


def delete_credential_state(session: Session, number: str) -> None:
    """Forget the desired state of credential ``number`` (nothing happens if there is none)."""
    _CREDENTIAL_STATES.delete(session, number)


# --------------------------------------------------------------------------- controllers


@dataclass(frozen=True)
class StoredControllerState:
    """The desired state of one door controller: ``body`` holds its allow-list and door
    settings."""

    controller_id: str
    revision: str
    body: dict[str, Any]
    computed_at: datetime


def _controller_state(row: Row[Any]) -> StoredControllerState:
    return StoredControllerState(
        controller_id=row.controller_id,
        revision=row.revision,
        body=row.body,
        computed_at=row.computed_at,
    )


_CONTROLLER_STATES = Repository(controller_state, "controller_id", _controller_state)


def put_controller_state(session: Session, state: StoredControllerState) -> None:
    """Store ``state``, replacing the stored state of the same controller."""
    _check_text("controller_id", state.controller_id, 64)
    _check_text("revision", state.revision, MAX_REVISION)
    check_json_object("body", state.body)
    _check_aware("computed_at", state.computed_at)
    _CONTROLLER_STATES.upsert(
        session,
        {
            "controller_id": state.controller_id,
            "revision": state.revision,
            "body": state.body,
            "computed_at": state.computed_at,
        },
    )


def get_controller_state(session: Session, controller_id: str) -> StoredControllerState | None:
    """The stored desired state of a controller, or None."""
    return _CONTROLLER_STATES.get(session, controller_id)


def all_controller_states(session: Session) -> list[StoredControllerState]:
    """Every stored controller state, by controller id."""
    return _CONTROLLER_STATES.all(session)


def delete_controller_state(session: Session, controller_id: str) -> None:
    """Forget the desired state of a controller (nothing happens if there is none)."""
    _CONTROLLER_STATES.delete(session, controller_id)


# --------------------------------------------------------------------------- blacklists


@dataclass(frozen=True)
class StoredBlacklist:
    """The blacklist an offline cylinder must hold: the serials of keys it must refuse.

    ``version`` starts at 1 and grows by one each time the content (``revision``) changes; a
    cylinder reports the version it holds, so the gateway knows whether it is current.
    """

    cylinder: str
    version: int
    serials: tuple[str, ...]
    revision: str
    computed_at: datetime


def _blacklist(row: Row[Any]) -> StoredBlacklist:
    return StoredBlacklist(
        cylinder=row.cylinder,
        version=row.version,
        serials=tuple(row.serials),
        revision=row.revision,
        computed_at=row.computed_at,
    )


_BLACKLISTS = Repository(cylinder_blacklist, "cylinder", _blacklist)


def put_blacklist(
    session: Session, cylinder: str, serials: tuple[str, ...], revision: str, at: datetime
) -> StoredBlacklist:
    """Store the blacklist of ``cylinder`` and return what is stored.

    A new cylinder starts at version 1. A ``revision`` different from the stored one bumps
    the version by 1 and replaces serials and ``computed_at``; the same revision leaves the
    stored blacklist unchanged (and returns it).
    """
    _check_text("cylinder", cylinder, 10)
    if not cylinder.isascii() or not cylinder.isdigit():
        raise ValueError(f"cylinder: must be digits, got {cylinder!r}")
    if not isinstance(serials, tuple):
        raise TypeError(f"serials: must be a tuple, got {type(serials).__name__}")
    for s in serials:
        if not isinstance(s, str) or not s.isascii() or not s.isdigit():
            raise ValueError(f"serials: a key serial is a string of digits, got {s!r}")
    _check_text("revision", revision, MAX_REVISION)
    _check_aware("at", at)
    current = get_blacklist(session, cylinder)
    if current is not None and current.revision == revision:
        return current
    stored = StoredBlacklist(
        cylinder=cylinder,
        version=1 if current is None else current.version + 1,
        serials=serials,
        revision=revision,
        computed_at=at.astimezone(UTC),
    )
    row = {
        "cylinder": cylinder,
        "version": stored.version,
        "serials": list(serials),
        "revision": revision,
        "computed_at": at,
    }
    if current is None:
        session.connection().execute(insert(cylinder_blacklist).values(row))
    else:
        session.connection().execute(
            update(cylinder_blacklist).where(cylinder_blacklist.c.cylinder == cylinder).values(row)
        )
    return stored


def get_blacklist(session: Session, cylinder: str) -> StoredBlacklist | None:
    """The stored blacklist of ``cylinder``, or None."""
    return _BLACKLISTS.get(session, cylinder)


def all_blacklists(session: Session) -> list[StoredBlacklist]:
    """Every stored blacklist, by cylinder."""
    return _BLACKLISTS.all(session)

"""The JSON Schemas say what the gateway refuses: checked with the ``jsonschema`` library, an
independent validator.

- every schema is a valid draft 2020-12 schema, and every field has a description;
- what the gateway refused although the schema accepted it (org numbers, cylinder and
  credential numbers, an approved application without ``decided_at``) is refused by the schema;
- a property: every payload the schema accepts is accepted by the gateway or refused for one of
  the reasons a JSON Schema cannot express, which docs/mqtt.md lists.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from gateway.bridge import schemas
from gateway.bridge.envelope import RequestError, parse_request
from gateway.commands.model import COMMANDS
from gateway.core import Core, Submission
from gateway.store import migrate
from gateway.store.database import Database
from tests import sample
from tests.gateway.bridge.harness import body

ROOT = Path(__file__).resolve().parents[3]
VALIDATOR = jsonschema.Draft202012Validator
FILES = schemas.schema_files()
REQUESTS = {c.name: FILES[f"request/{c.name}.json"] for c in COMMANDS}

STATE_CODES = {"NOT_FOUND", "CONFLICT", "STALE", "ILLEGAL_TRANSITION", "FORBIDDEN"}
"""Refusals by the stored facts: no schema of one payload can foresee them."""

NOT_EXPRESSIBLE = {
    "the Luhn check digit of an organisation number": r"check digit \(Luhn\) does not match",
    "one date or instant before another of the same request": (
        r"valid_until must not be before valid_from|valid_from must not be before signed_on"
        r"|ends_on must not be before starts_on|decided_at must not be before submitted_at"
        r"|must be after the card's start|valid_until must be after valid_from"
        r"|a receipt cannot be signed before it was produced"
    ),
    "a schedule interval that ends before it starts": r"end must be after start",
    "an employment listed twice in one application": r"has two entries; merge its spaces",
    "a forgotten-card visitor card valid past the end of the working day": (
        r"valid at most to the end of the working day"
    ),
    "a rule about the credential or space named (its kind, its doors)": (
        r"visitor cards are issued with visitor_card_issue|only employee cards \(tags\)"
        r"|only keys are replaced this way|has no controller doors a card could open"
    ),
}
"""What the gateway refuses for a reason a JSON Schema cannot express, by the message it
gives. docs/mqtt.md lists each (the keys)."""


def validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    return VALIDATOR(schema, format_checker=VALIDATOR.FORMAT_CHECKER)


def accepted(schema: dict[str, Any], payload: Any) -> bool:
    return validator(schema).is_valid(payload)


# --------------------------------------------------------------------------- the schemas


def _properties(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{path}.{name}", sub
        for key, value in node.items():
            if key not in ("if", "then", "else"):  # conditions restate fields, tersely
                yield from _properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for value in node:
            yield from _properties(value, path)


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_schema_is_a_valid_json_schema_and_every_field_is_described(name: str) -> None:
    schema = json.loads((ROOT / "schemas" / name).read_text(encoding="utf-8"))
    VALIDATOR.check_schema(schema)
    missing = [path for path, sub in _properties(schema) if "description" not in sub]
    assert not missing, f"{name}: fields without a description: {missing}"


def _story() -> dict[str, dict[str, Any]]:
    """A valid payload of each request the sample story sends (the first of its kind)."""
    out: dict[str, dict[str, Any]] = {}
    for i, command in enumerate(sample.sample_commands(date(2026, 11, 23))):
        out.setdefault(command.name, json.loads(json.dumps(body(command, f"r-{i}"))))
    return out


STORY = _story()


def _leaves(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _leaves(value)
    elif isinstance(node, list):
        for value in node:
            yield from _leaves(value)


KNOWN = sorted(
    {
        leaf
        for i, command in enumerate(sample.sample_commands(datetime.now(UTC).date()))
        for leaf in _leaves(json.loads(json.dumps(body(command, f"r-{i}"))))
    }
)
"""Every string of the sample story: ids, numbers and names the loaded core knows, drawn
besides random ones so that payloads reach the rules too."""


def test_the_sample_story_follows_the_schemas() -> None:
    for name, payload in STORY.items():
        errors = [e.message for e in validator(REQUESTS[name]).iter_errors(payload)]
        assert not errors, (name, errors)


def _with(payload: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(payload))
    node = out
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is _DROP:
        del node[last]
    else:
        node[last] = value
    return out


_DROP = object()

REFUSED_BY_BOTH = [
    ("organisation", "organisation.org_number", "55667788"),
    ("organisation", "organisation.org_number", "556677-88999"),
    ("organisation", "organisation.name", "   "),
    ("organisation", "organisation.name", "Line\nbreak"),
    ("space", "space.cylinders", ["4294967296"]),
    ("space", "space.cylinders", ["200101", "200101"]),
    ("space", "space.id", "sp tech"),
    ("space", "space.required_competences", ["EL SAK"]),
    ("tags", "numbers", ["0"]),
    ("tags", "numbers", ["4000777", "4000777"]),
    ("handout", "credential_number", "12a"),
    ("delivery", "manifest.key_serials", ["10000001"]),
    ("employment", "employment.id06.card_number", "ID06-1"),
    ("person", "person.mobile", "070 123"),
    ("application", "application.status", "approved"),  # with decided_at dropped below
    (
        "application",
        "application.entries.0.schedule",
        {"intervals": [{"days": [7], "start": "07:00", "end": "16:00"}]},
    ),
    (
        "application",
        "application.entries.0.schedule",
        {"intervals": [{"days": [1], "start": "07:00:00Z", "end": "16:00"}]},
    ),
    ("key_order", "order.ordered_at", "2026-11-23T08:00:00"),
    ("agreement", "agreement.valid_from", "2026-13-01"),
    ("id06_block", "request_id", "  "),
]


def refusal(core: Core, name: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The gateway's refusal of ``payload`` (parsed, then applied), or None."""
    parsed = parse_request(name, json.dumps(payload).encode())
    if isinstance(parsed, RequestError):
        return parsed.response()["error"]  # type: ignore[no-any-return]
    return loaded_outcome(core, parsed.command)


def loaded_outcome(core: Core, command: Any) -> dict[str, Any] | None:
    return core.submit(Submission(command, "tester")).error


@pytest.mark.parametrize(("name", "path", "value"), REFUSED_BY_BOTH)
def test_the_schema_refuses_what_the_gateway_refuses_for_its_shape(
    loaded_core: Core, name: str, path: str, value: Any
) -> None:
    payload = _with(STORY[name], path, value)
    if name == "application":
        payload = _with(payload, "application.decided_at", _DROP)
    error = refusal(loaded_core, name, payload)
    assert error is not None and error["code"] == "INVALID", error
    assert not accepted(REQUESTS[name], payload), (name, path, value)


# --------------------------------------------------------------------------- the property


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return dict(node)


def payloads(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values drawn from what ``schema`` describes (its types, patterns, bounds, enums),
    without trying to meet every keyword: the tests keep the ones the validator accepts."""
    if "$ref" in schema:
        merged = {
            **_resolve(root, schema["$ref"]),
            **{k: v for k, v in schema.items() if k != "$ref"},
        }
        return payloads(merged, root)
    if "anyOf" in schema:
        return st.one_of([payloads(s, root) for s in schema["anyOf"]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        return _strings(schema)
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**40)), schema.get("maximum", 2**40))
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = payloads(schema.get("items", {}), root)
        low = schema.get("minItems", 0)
        return st.lists(items, min_size=low, max_size=min(schema.get("maxItems", 4), low + 3))
    if kind == "object":
        return _objects(schema, root)
    return st.none() | st.booleans() | st.integers() | st.text(max_size=5)


def _strings(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    fmt = schema.get("format")
    if fmt == "date-time":
        zones = st.sampled_from([UTC, *[datetime.now(UTC).astimezone().tzinfo]])
        moments = st.datetimes(
            min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=zones
        )
        return moments.map(lambda d: d.isoformat()) | moments.map(
            lambda d: d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        )
    if fmt == "date":
        return st.dates(date(1990, 1, 1), date(2100, 1, 1)).map(date.isoformat)
    low, high = schema.get("minLength", 0), schema.get("maxLength", 30)
    if "pattern" in schema:
        drawn = st.from_regex(schema["pattern"], fullmatch=True).filter(
            lambda s: low <= len(s) <= high
        )
        known = [k for k in KNOWN if re.search(schema["pattern"], k) and low <= len(k) <= high]
        return st.sampled_from(known) | drawn if known else drawn
    return st.text(min_size=low, max_size=min(high, low + 30))


def _objects(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, sub in properties.items():
            if name in required or draw(st.booleans()):
                out[name] = draw(payloads(sub, root))
        return out

    return build()


@pytest.fixture(scope="module")
def loaded_core() -> Iterator[Core]:
    """A core on its own database holding the sample story."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/contract.db"
        migrate.upgrade(url)
        db = Database(url)
        try:
            core = Core(db)
            core.load()
            today = datetime.now(UTC).date()
            core.submit_many(
                [Submission(c, "loader") for c in sample.sample_commands(today)], atomic=True
            )
            yield core
        finally:
            db.dispose()


def inexpressible(message: str) -> bool:
    return any(re.search(pattern, message) for pattern in NOT_EXPRESSIBLE.values())


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(st.data())
def test_what_the_schema_accepts_the_gateway_accepts_or_refuses_for_a_reason_of_state(
    loaded_core: Core, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(REQUESTS)), label="request")
    schema = REQUESTS[name]
    payload = data.draw(payloads(schema, schema), label="payload")
    assume(accepted(schema, payload))
    parsed = parse_request(name, json.dumps(payload).encode())
    if isinstance(parsed, RequestError):
        event("refused by shape the schema cannot express")
        assert inexpressible(parsed.message), (name, parsed)
        return
    outcome = loaded_core.submit(Submission(parsed.command, "tester"))
    event(f"{name}: {outcome.error['code'] if outcome.error else 'accepted'}")
    if not outcome.ok:
        assert outcome.error is not None
        code, message = outcome.error["code"], outcome.error["message"]
        assert code in STATE_CODES or inexpressible(message), (name, outcome.error)


def test_the_docs_list_what_the_schemas_cannot_express() -> None:
    doc = (ROOT / "docs" / "mqtt.md").read_text(encoding="utf-8")
    section = doc[doc.index("### What the schemas cannot say") :]
    for reason in NOT_EXPRESSIBLE:
        assert reason in section, reason

"""Request envelopes: turning the bytes of an MQTT request into a command, or into the one
error response that names what is wrong.

A request payload is one JSON object: the envelope fields ``request_id`` (required),
``expires_at`` and ``client`` (optional) side by side with the command's own top-level
fields. For example, on ``<base>/v1/request/id06_block``::

    {"request_id": "c-1842", "expires_at": "2026-11-23T12:00:00Z",
     "card_number": "ID06DN0001", "reason": "reported lost"}

The master-data requests carry their fact as one nested object named after it, e.g. on
``<base>/v1/request/organisation``::

    {"request_id": "c-1843", "organisation": {"org_number": "5566778899", "name": "..."}}

Parsing never raises: :func:`parse_request` returns either a :class:`ParsedRequest` or a
:class:`RequestError` with a stable code, a message and the dotted field path of the first
error, and the list of every error found.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model

from gateway.commands.model import COMMANDS, COMMANDS_BY_NAME, Command
from gateway.core import error_body, error_of, field_errors
from gateway.domain.timeutil import UtcDateTime

MAX_PAYLOAD_BYTES = 256 * 1024
"""Largest request payload accepted (bytes). Larger ones are refused unread."""

ENVELOPE_FIELDS = ("request_id", "expires_at", "client")


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must not contain control characters")
    return value


PRINTABLE_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$"
"""What a sender should write: printable ASCII, no spaces around (the gateway also accepts
other printable characters)."""

RequestId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description="Chosen by the sender, unique per change: the same request again returns "
        "the stored response, another request with the same id is refused (CONFLICT).",
        json_schema_extra={"pattern": PRINTABLE_PATTERN},
    ),
    AfterValidator(_printable),
]

ClientName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        description="Identity of the sending system; selects the operator the request acts "
        "as (mqtt.client_operators). Absent: mqtt.system_operator.",
        json_schema_extra={"pattern": PRINTABLE_PATTERN},
    ),
    AfterValidator(_printable),
]


class RequestEnvelope(BaseModel):
    """Fields every request carries next to the command's own fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    request_id: RequestId
    expires_at: UtcDateTime | None = Field(
        default=None,
        description="If set, the request is refused with EXPIRED once this instant has "
        "passed, and never applied late.",
    )
    client: ClientName | None = Field(
        default=None,
        description="Identity of the sending system; selects the operator the request acts "
        "as (mqtt.client_operators). Absent: mqtt.system_operator.",
    )


@functools.cache
def request_model(command: type[Command]) -> type[BaseModel]:
    """The payload model of the request that carries ``command``: envelope + command fields."""
    clash = set(ENVELOPE_FIELDS) & set(command.model_fields)
    if clash:
        raise TypeError(f"{command.__name__}: fields {sorted(clash)} clash with the envelope")
    model: type[BaseModel] = create_model(
        f"{command.__name__}Request",
        __base__=(RequestEnvelope, command),
        # The fields, and the descriptions their attribute docstrings gave them, come from
        # the bases: reading attribute docstrings again would have pydantic look for this
        # class's source (there is none), which took most of the bridge's import time.
        __config__=_REQUEST_CONFIG,
        __doc__=command.summary or command.__doc__,
    )
    return model


_REQUEST_CONFIG: Final = ConfigDict(use_attribute_docstrings=False)


def request_models() -> dict[str, type[BaseModel]]:
    """Request payload model per request name."""
    return {c.name: request_model(c) for c in COMMANDS}


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """A valid request: its command and envelope."""

    name: str
    request_id: str
    command: Command
    expires_at: datetime | None
    client: str | None


@dataclass(frozen=True, slots=True)
class RequestError:
    """Why a payload is not a valid request; ``request_id`` when it could still be read.
    ``errors`` lists every error found (``{field, message}``); empty means just the one of
    ``message`` and ``field``."""

    request_id: str | None
    code: str
    message: str
    field: str | None = None
    errors: tuple[dict[str, Any], ...] = ()

    def response(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": "error",
            "data": {},
            "error": error_body(self.code, self.message, self.field, list(self.errors) or None),
        }


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _loads(payload: bytes) -> Any:
    """Decode JSON strictly (UTF-8, no NaN/Infinity); raises ValueError with the reason."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"payload is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("payload is not JSON: nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:
        raise ValueError(f"payload is not JSON: {exc}") from None


def _readable_request_id(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    rid = obj.get("request_id")
    if isinstance(rid, str):
        rid = rid.strip()
        if 0 < len(rid) <= 200 and rid.isprintable():
            return rid
    return None


def parse_request(name: str, payload: bytes) -> ParsedRequest | RequestError:
    """Validate ``payload`` as a request named ``name`` (the last topic level)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return RequestError(
            None,
            "PAYLOAD_TOO_LARGE",
            f"payload is {len(payload)} bytes, at most {MAX_PAYLOAD_BYTES} are accepted",
        )
    command_type = COMMANDS_BY_NAME.get(name)
    if command_type is not None:
        try:
            request = request_model(command_type).model_validate_json(payload)
        except ValidationError:
            pass  # classified below, with the slower but more precise path
        else:
            return _parsed(name, command_type, request)
    try:
        obj = _loads(payload)
    except ValueError as exc:
        return RequestError(None, "INVALID_JSON", str(exc))
    request_id = _readable_request_id(obj)
    if not isinstance(obj, dict):
        return RequestError(
            None, "INVALID", f"payload must be a JSON object, got {type(obj).__name__}"
        )
    if command_type is None:
        known = ", ".join(sorted(COMMANDS_BY_NAME))
        return RequestError(
            request_id,
            "UNKNOWN_REQUEST",
            f"no request is named {name!r} (known: {known})",
            "topic",
        )
    try:
        request = request_model(command_type).model_validate(obj)
    except ValidationError as exc:
        code, message, field_name = error_of(exc)
        errors = field_errors(exc)
        hint = _nesting_hint(command_type, obj, exc)
        if hint:
            message = f"{message}: {hint}"
            errors[0] = {**errors[0], "message": f"{errors[0]['message']}: {hint}"}
        return RequestError(request_id, code, message, field_name, tuple(errors))
    return _parsed(name, command_type, request)


def _nesting_hint(command_type: type[Command], obj: dict[str, Any], exc: ValidationError) -> str:
    """For a request whose fields were sent flat although they nest in one object (the master
    data requests: ``{"organisation": {"org_number": ..., "name": ...}}``), say so."""
    first = exc.errors()[0]
    if first["type"] != "missing" or len(first["loc"]) != 1:
        return ""
    name = str(first["loc"][0])
    spec = command_type.model_fields.get(name)
    annotation = spec.annotation if spec is not None else None
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return ""
    inner = set(annotation.model_fields)
    flat = sorted(k for k in obj if k in inner and k not in command_type.model_fields)
    if not flat:
        return ""
    return f"the fields {', '.join(flat)} belong inside the object {name!r}"


@functools.cache
def _field_names(command_type: type[Command]) -> tuple[str, ...]:
    # pydantic's ``model_fields`` is a descriptor that costs more than the rest of _parsed.
    return tuple(command_type.model_fields)


def _parsed(name: str, command_type: type[Command], request: BaseModel) -> ParsedRequest:
    values = {k: getattr(request, k) for k in _field_names(command_type)}
    command = command_type.model_construct(**values)
    return ParsedRequest(
        name=name,
        request_id=getattr(request, "request_id"),  # noqa: B009 - dynamic model
        command=command,
        expires_at=getattr(request, "expires_at"),  # noqa: B009
        client=getattr(request, "client"),  # noqa: B009
    )


__all__ = [
    "ENVELOPE_FIELDS",
    "MAX_PAYLOAD_BYTES",
    "ParsedRequest",
    "RequestEnvelope",
    "RequestError",
    "parse_request",
    "request_model",
    "request_models",
]

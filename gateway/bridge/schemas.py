"""Generated artefacts of the topic map: JSON Schemas, the AsyncAPI 3 document and the topic
reference section of ``docs/mqtt.md``.

Everything here is a pure function of :data:`gateway.bridge.topics.SPECS`, so the checked-in
files can be compared with what the models produce (a test does). ``lockgate schemas export``
writes them.

The AsyncAPI document is written as YAML by PyYAML (:func:`to_yaml`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.bridge import payloads as p
from gateway.bridge.envelope import MAX_PAYLOAD_BYTES
from gateway.bridge.topics import SPECS, VERSION, Direction, TopicSpec

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_FILE = "asyncapi.yaml"
DOC_BEGIN = "<!-- BEGIN GENERATED: topic reference (lockgate schemas export --docs) -->"
DOC_END = "<!-- END GENERATED: topic reference -->"
BASE = "{base}"


# --------------------------------------------------------------------------- JSON Schema


INSTANT_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
"""Instants: RFC 3339 with a `T`, at most microseconds, and an offset (`Z` or `+01:00`)."""
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def tidy(node: Any) -> Any:
    """A generated schema made exact for other validators: instants and dates get a pattern
    besides their format (format checking is optional in JSON Schema), and descriptions read
    as sentences (docstring line breaks removed, paragraphs kept)."""
    if isinstance(node, list):
        return [tidy(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: tidy(v) for k, v in node.items()}
    if isinstance(out.get("description"), str):
        out["description"] = re.sub(r"(?<!\n)\n(?!\n)", " ", out["description"])
    if out.get("type") == "string" and "pattern" not in out:
        if out.get("format") == "date-time":
            out["pattern"] = INSTANT_PATTERN
        elif out.get("format") == "date":
            out["pattern"] = DATE_PATTERN
    return out


def json_schema(model: type[BaseModel], title: str | None = None) -> dict[str, Any]:
    """The standalone JSON Schema (draft 2020-12) of a payload model."""
    schema = model.model_json_schema(mode="validation")
    out: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT}
    if title:
        schema["title"] = title
    out.update(tidy(schema))
    return out


def schema_files() -> dict[str, dict[str, Any]]:
    """Relative path under ``schemas/`` -> JSON Schema, one per distinct payload."""
    files: dict[str, dict[str, Any]] = {}
    for spec in SPECS:
        if spec.schema_file not in files:
            title = f"{spec.command.name} request" if spec.command is not None else None
            files[spec.schema_file] = json_schema(spec.model, title)
    return files


def dumps(obj: Any) -> str:
    """The stable text of a generated JSON file."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- AsyncAPI 3


def _channel_id(spec: TopicSpec) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", spec.key)


def _message_id(spec: TopicSpec) -> str:
    return "response" if spec.key.startswith("response.") else _channel_id(spec)


def _asyncapi_schema(node: Any) -> Any:
    """A JSON Schema as an AsyncAPI Schema Object: the same, except that ``discriminator`` is
    the name of the property (pydantic writes OpenAPI's ``{propertyName, mapping}``)."""
    if isinstance(node, dict):
        out = {k: _asyncapi_schema(v) for k, v in node.items()}
        disc = out.get("discriminator")
        if isinstance(disc, dict):
            out["discriminator"] = disc["propertyName"]
        return out
    if isinstance(node, list):
        return [_asyncapi_schema(v) for v in node]
    return node


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.1 document of every channel and operation, from the gateway's side:
    it *receives* requests (and replies on the response channel) and *sends* everything else.
    Addresses use ``{base}`` for the configured base topic."""
    models = sorted({s.model for s in SPECS}, key=lambda m: m.__name__)
    _, defs = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = _asyncapi_schema(tidy(dict(sorted(defs.get("$defs", {}).items()))))
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for spec in SPECS:
        cid = _channel_id(spec)
        mid = _message_id(spec)
        if mid not in messages:
            message: dict[str, Any] = {
                "name": mid,
                "title": spec.model.__name__,
                "contentType": "application/json",
                "payload": {"$ref": f"#/components/schemas/{spec.model.__name__}"},
            }
            if spec.command is not None or spec.key.startswith("response."):
                message["correlationId"] = {
                    "description": "The request_id of the request; MQTT v5 correlation data is "
                    "echoed too.",
                    "location": "$message.payload#/request_id",
                }
            messages[mid] = message
        channel: dict[str, Any] = {
            "address": f"{BASE}/{spec.pattern}",
            "description": spec.description,
            "messages": {mid: {"$ref": f"#/components/messages/{mid}"}},
        }
        channel["parameters"] = {
            "base": {
                "description": "The base topic (setting mqtt.base_topic).",
                "default": "lockgate",
            },
            **{name: {"description": text} for name, text in spec.parameters.items()},
        }
        channels[cid] = channel
        binding = {"mqtt": {"qos": spec.qos, "retain": spec.retained, "bindingVersion": "0.2.0"}}
        if spec.direction is Direction.INBOUND:
            assert spec.reply is not None
            reply = next(s for s in SPECS if s.key == spec.reply)
            operations[f"receive_{cid}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{cid}"},
                "summary": spec.description,
                "bindings": binding,
                "reply": {
                    "channel": {"$ref": f"#/channels/{_channel_id(reply)}"},
                    "messages": [{"$ref": f"#/channels/{_channel_id(reply)}/messages/response"}],
                },
            }
        elif spec.direction is Direction.AGENT:
            operations[f"receive_{cid}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{cid}"},
                "summary": spec.description,
                "bindings": binding,
                "messages": [{"$ref": f"#/channels/{cid}/messages/{mid}"}],
            }
        elif not spec.key.startswith("response."):
            operations[f"send_{cid}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{cid}"},
                "summary": spec.description,
                "bindings": binding,
                "messages": [{"$ref": f"#/channels/{cid}/messages/{mid}"}],
            }
    return {
        "asyncapi": "3.1.0",
        "info": {
            "title": "lockgate MQTT API",
            "version": VERSION,
            "description": "Requests to change the facts lockgate keeps, their responses, "
            "retained credential state and device availability, and the events feed. "
            "See docs/mqtt.md. Every payload is a UTF-8 JSON object of at most "
            f"{MAX_PAYLOAD_BYTES} bytes.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "broker": {
                "host": "{host}:{port}",
                "protocol": "mqtt",
                "protocolVersion": "5",
                "description": "The site's MQTT broker (see deploy/mosquitto).",
                "variables": {
                    "host": {"default": "localhost"},
                    "port": {"default": "1883", "enum": ["1883", "8883"]},
                },
                "bindings": {
                    "mqtt": {
                        "clientId": "lockgate-gateway",
                        "cleanSession": False,
                        "lastWill": {
                            "topic": f"{BASE}/{VERSION}/bridge/state",
                            "qos": 1,
                            "retain": True,
                            "message": '{"state":"offline"}',
                        },
                        "bindingVersion": "0.2.0",
                    }
                },
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


# --------------------------------------------------------------------------- YAML


def to_yaml(data: dict[str, Any]) -> str:
    """YAML text of JSON data (a mapping at the top), in block style and in the mapping's
    own key order, written by PyYAML."""
    return yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )


# --------------------------------------------------------------------------- docs


def _row(*cells: str) -> str:
    return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


_DIRECTION_LABELS = {
    Direction.OUTBOUND: "gateway → central",
    Direction.INBOUND: "central → gw",
    Direction.AGENT: "site agent → gw",
}


def topic_reference() -> str:
    """The generated Markdown section of docs/mqtt.md: every topic of the map."""
    out = [
        DOC_BEGIN,
        "",
        "### Topics",
        "",
        _row("Topic", "Direction", "QoS", "Retained", "Payload schema", "Meaning"),
        _row("---", "---", "---", "---", "---", "---"),
    ]
    for spec in SPECS:
        if spec.command is not None or spec.key.startswith("response."):
            continue
        out.append(
            _row(
                f"`<base>/{spec.pattern}`",
                "gateway → site agent"
                if spec.key.startswith("site_") and spec.direction is Direction.OUTBOUND
                else _DIRECTION_LABELS[spec.direction],
                str(spec.qos),
                "yes" if spec.retained else "no",
                f"[`{spec.schema_file}`](../schemas/{spec.schema_file})",
                spec.description,
            )
        )
    out += [
        "",
        "### Requests",
        "",
        "Each request `<name>` is published on `<base>/v1/request/<name>` and answered on "
        "`<base>/v1/response/<name>` (QoS 1, not retained; response schema "
        "[`response.json`](../schemas/response.json)). Requests marked *revokes* overtake "
        "queued requests.",
        "",
        _row("Request topic", "Response topic", "Payload schema", "Revokes", "What it does"),
        _row("---", "---", "---", "---", "---"),
    ]
    for spec in SPECS:
        if spec.command is None or spec.reply is None:
            continue
        reply = next(s for s in SPECS if s.key == spec.reply)
        out.append(
            _row(
                f"`<base>/{spec.pattern}`",
                f"`<base>/{reply.pattern}`",
                f"[`{spec.schema_file}`](../schemas/{spec.schema_file})",
                "yes" if spec.command.revokes else "",
                spec.description,
            )
        )
    out += [
        "",
        "### Event kinds",
        "",
        _row("kind", "Fields besides id, seq, kind, at"),
        _row("---", "---"),
    ]
    for kind, model in p.EVENT_KINDS.items():
        fields = [f for f in model.model_fields if f not in ("id", "seq", "kind", "at")]
        out.append(_row(f"`{kind}`", ", ".join(f"`{f}`" for f in fields)))
    out += ["", DOC_END]
    return "\n".join(out)


def refresh_docs(text: str) -> str:
    """``text`` (docs/mqtt.md) with its generated section replaced by the current one."""
    start = text.find(DOC_BEGIN)
    end = text.find(DOC_END)
    if start < 0 or end < start:
        raise ValueError(f"the document has no generated section ({DOC_BEGIN} ... {DOC_END})")
    return text[:start] + topic_reference() + text[end + len(DOC_END) :]


# --------------------------------------------------------------------------- export


def generated_files() -> dict[str, str]:
    """Relative path under ``schemas/`` -> file text, for everything ``export`` writes."""
    files = {path: dumps(schema) for path, schema in schema_files().items()}
    files[ASYNCAPI_FILE] = (
        "# Generated by `lockgate schemas export` from gateway/bridge/topics.py: do not edit.\n"
        + to_yaml(asyncapi())
    )
    return dict(sorted(files.items()))


def export(
    out: Path, docs: Path | None = None, *, keep: frozenset[str] = frozenset()
) -> list[Path]:
    """Write every generated file under ``out`` (and refresh ``docs``); return what changed.
    Stale ``.json`` files of earlier versions under ``out`` are removed, except ``keep``
    (files other generators write there: the HTTP API's ``openapi.json``)."""
    changed: list[Path] = []
    files = generated_files()
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    for stale in sorted(out.rglob("*.json")):
        rel = stale.relative_to(out).as_posix()
        if rel not in files and rel not in keep:
            stale.unlink()
            changed.append(stale)
    if docs is not None:
        current = docs.read_text(encoding="utf-8")
        fresh = refresh_docs(current)
        if fresh != current:
            docs.write_text(fresh, encoding="utf-8")
            changed.append(docs)
    return changed


__all__ = [
    "ASYNCAPI_FILE",
    "DOC_BEGIN",
    "DOC_END",
    "asyncapi",
    "export",
    "generated_files",
    "json_schema",
    "refresh_docs",
    "schema_files",
    "to_yaml",
    "topic_reference",
]

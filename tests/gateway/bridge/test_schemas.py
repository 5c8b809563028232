"""The generated contract: schemas/ and docs/mqtt.md match the topic map, the AsyncAPI
document is consistent and reads back from its YAML."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from gateway.bridge import schemas
from gateway.bridge.topics import SPECS, SPECS_BY_KEY, Direction, TopicMap
from gateway.cli import app
from gateway.commands.model import COMMANDS
from tests import sample
from tests.gateway.bridge.harness import body

ROOT = Path(__file__).resolve().parents[3]


def test_checked_in_schemas_are_what_the_models_produce() -> None:
    expected = schemas.generated_files()
    folder = ROOT / "schemas"
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    present.discard("openapi.json")  # the HTTP API's, checked by tests/gateway/web
    assert present == set(expected), "run: lockgate schemas export"
    for rel, text in expected.items():
        assert (folder / rel).read_text(encoding="utf-8") == text, (
            f"schemas/{rel} is stale: run lockgate schemas export"
        )


def test_the_docs_describe_every_topic_of_the_map() -> None:
    doc = (ROOT / "docs" / "mqtt.md").read_text(encoding="utf-8")
    assert schemas.topic_reference() in doc, "run: lockgate schemas export --docs docs/mqtt.md"
    for spec in SPECS:
        assert f"`<base>/{spec.pattern}`" in doc, spec.key
        assert f"../schemas/{spec.schema_file}" in doc, spec.key


def test_export_writes_the_files_and_removes_stale_ones(tmp_path: Path) -> None:
    (tmp_path / "request").mkdir()
    (tmp_path / "request" / "gone.json").write_text("{}")
    doc = tmp_path / "mqtt.md"
    doc.write_text(f"intro\n{schemas.DOC_BEGIN}\nSTALE-TEXT\n{schemas.DOC_END}\noutro\n")
    result = CliRunner().invoke(
        app, ["schemas", "export", "--out", str(tmp_path), "--docs", str(doc)]
    )
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "request" / "gone.json").exists()
    assert (tmp_path / "asyncapi.yaml").read_text() == schemas.generated_files()["asyncapi.yaml"]
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n")
    assert "STALE-TEXT" not in text
    assert schemas.topic_reference() in text
    again = CliRunner().invoke(app, ["schemas", "export", "--out", str(tmp_path)])
    assert "0 changed" in again.output


def test_every_request_schema_admits_the_sample_story() -> None:
    files = schemas.schema_files()
    for i, command in enumerate(sample.sample_commands(date(2026, 11, 23))):
        schema = files[f"request/{command.name}.json"]
        assert schema["additionalProperties"] is False
        assert "request_id" in schema["required"]
        assert set(body(command, f"r{i}")) <= set(schema["properties"]), command.name


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_the_asyncapi_document_is_consistent() -> None:
    doc = schemas.asyncapi()
    assert doc["asyncapi"] == "3.1.0"
    for ref in _refs(doc):
        _resolve(doc, ref)
    for cid, channel in doc["channels"].items():
        params = set(re.findall(r"{(\w+)}", channel["address"]))
        assert params == set(channel.get("parameters", {})), cid
        assert re.fullmatch(r"[A-Za-z0-9_]+", cid)
    operations = doc["operations"]
    requests = [s for s in SPECS if s.direction is Direction.INBOUND]
    assert len(requests) == len(COMMANDS)
    for spec in requests:
        op = operations[f"receive_request_{spec.command.name}"]  # type: ignore[union-attr]
        assert op["action"] == "receive"
        assert op["reply"]["channel"]["$ref"] == f"#/channels/response_{spec.command.name}"  # type: ignore[union-attr]
    sends = {k for k, v in operations.items() if v["action"] == "send"}
    assert sends == {
        "send_bridge_state",
        "send_credential_state",
        "send_device_availability",
        "send_events",
        "send_site_desired",
        "send_site_ack",
        "send_site_key_image",
    }
    receives = {k for k, v in operations.items() if v["action"] == "receive"}
    assert {
        "receive_site_confirm",
        "receive_site_events",
        "receive_site_state",
        "receive_site_key_request",
        "receive_site_key_visit",
        "receive_site_key_confirm",
        "receive_site_key_failed",
    } <= receives


def test_the_topic_map_builds_and_checks_topics() -> None:
    topics = TopicMap("site/a")
    assert topics.credential_state("100000001") == "site/a/v1/credential/100000001/state"
    assert topics.filter("credential_state") == "site/a/v1/credential/+/state"
    assert topics.request_filter == "site/a/v1/request/+"
    assert topics.request_name("site/a/v1/request/id06_block") == "id06_block"
    assert topics.request_name("site/a/v1/request/a/b") is None
    assert topics.request_name("other/v1/request/x") is None
    assert SPECS_BY_KEY["request.id06_block"].command is not None
    for bad in ["", "/x", "x/", "a/+/b", "a/#", "a\x00"]:
        with pytest.raises(ValueError, match=r"mqtt\.base_topic"):
            TopicMap(bad)


# --------------------------------------------------------------------------- YAML


def test_the_asyncapi_yaml_reads_back_as_the_document() -> None:
    text = (ROOT / "schemas" / schemas.ASYNCAPI_FILE).read_text(encoding="utf-8")
    assert yaml.safe_load(text) == json.loads(json.dumps(schemas.asyncapi()))


def test_the_docs_say_exactly_which_requests_nest_their_fields() -> None:
    doc = (ROOT / "docs" / "mqtt.md").read_text(encoding="utf-8")
    section = doc[doc.index("**What nests.**") : doc.index("A master-data request sent flat")]
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)`", section, flags=re.MULTILINE)
    nested = {
        c.name: name
        for c in COMMANDS
        for name, info in c.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
    }
    assert dict(rows) == nested
    for c in COMMANDS:
        if c.name not in nested:  # flat: no field of an object type at the top
            assert all(
                not (isinstance(i.annotation, type) and issubclass(i.annotation, BaseModel))
                for i in c.model_fields.values()
            )

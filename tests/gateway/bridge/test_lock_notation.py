"""Events name locks in the one notation of :mod:`gateway.domain.locks`, whatever form the
sync engine reports them in, and the published schema says so."""

from __future__ import annotations

import json
import re
from pathlib import Path

from gateway.bridge.payloads import AccessEvent, DeviceEvent
from gateway.domain.locks import CANONICAL_PATTERN

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


def test_access_and_device_events_carry_the_canonical_lock() -> None:
    event = AccessEvent.model_validate(
        {
            "id": "8b3f1a52-5a7e-4f0e-9a1c-0f1e2d3c4b5a",
            "seq": 1,
            "at": "2026-11-23T08:00:00Z",
            "kind": "access_denied",
            "number": "100000001",
            "device_id": "wall-hallsberg",
            "lock": "200101",
            "occurred_at": "2026-11-23T07:59:00Z",
            "source": "cylinder_audit",
        }
    )
    assert event.lock == "cylinder:200101"
    assert json.loads(event.model_dump_json())["lock"] == "cylinder:200101"
    device = DeviceEvent.model_validate(
        {
            "id": "8b3f1a52-5a7e-4f0e-9a1c-0f1e2d3c4b5b",
            "seq": 2,
            "at": "2026-11-23T08:00:00Z",
            "kind": "door_forced",
            "device_id": "ctrl-office",
            "lock": "ctrl-office:2",
        }
    )
    assert device.lock == "door:ctrl-office/2"


def test_the_event_schema_publishes_the_notation() -> None:
    text = (SCHEMAS / "event.json").read_text(encoding="utf-8")
    patterns = {m for m in re.findall(r'"pattern": "([^"]*)"', text) if "cylinder:" in m}
    assert {json.loads(f'"{p}"') for p in patterns} == {CANONICAL_PATTERN}

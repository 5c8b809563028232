"""The sync engine on the OSDP reader of the demo site (lockgate is its panel): its
allow-list is confirmed, and the reader's tamper, power and link reach MQTT as device
events whose payloads validate against the published schema."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.bridge.payloads import DeviceEvent
from gateway.bridge.syncsink import BridgeSyncSink
from gateway.domain import DEFAULT_TIMEZONE
from gateway.store import device_records as sync_store
from simulators.site import DEFAULT_SITE
from tests.gateway.sync.site import RunningSite, running_site

HUT = "osdp-hut"


def today() -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date()


def published(run: RunningSite, kind: str, body: dict[str, Any]) -> DeviceEvent:
    """The MQTT event the bridge makes of a sync report, validated by its model."""
    with run.core.db.session(readonly=True) as s:
        mapped = BridgeSyncSink(publisher=None, core=run.core)._map(s, kind, body)  # type: ignore[arg-type]
    assert mapped is not None, kind
    return DeviceEvent.model_validate(
        {
            "id": "0" * 32,
            "seq": 1,
            "at": datetime.now(UTC).isoformat(),
            **mapped.model_dump(mode="json"),
        }
    )


def reports(run: RunningSite, kind: str) -> list[dict[str, Any]]:
    return [b for k, b in run.sink.events if k == kind and b.get("device") == HUT]


async def test_reader_tamper_power_and_link_reach_mqtt_as_device_events(
    sqlite_url: str, tmp_path: Path
) -> None:
    site = tmp_path / "site.toml"  # the demo site with a second reader on the hut's bus
    text = DEFAULT_SITE.read_text(encoding="utf-8")
    site.write_text(text.replace('kind = "osdp"\ndoors = 1', 'kind = "osdp"\ndoors = 2'))
    async with running_site(sqlite_url, today(), site_file=site) as run:
        worker = run.sync.controllers[HUT]
        await run.until(lambda: worker.writes >= 1, timeout=20.0, what="the hut's allow-list")
        with run.core.db.session(readonly=True) as s:
            assert sync_store.get_controller(s, HUT) is not None
        for what, kind in (
            ("tamper", "device_tamper"),
            ("tamper_cleared", "device_tamper_cleared"),
            ("power_failure", "device_power_failure"),
            ("power_restored", "device_power_restored"),
        ):
            await run.site.reader_event(HUT, 1, what)
            worker.wake()
            await run.until(lambda kind=kind: bool(reports(run, kind)), what=kind)
            event = published(run, kind, reports(run, kind)[-1])
            assert (event.kind, event.device_id, event.lock) == (kind, HUT, f"door:{HUT}/1")
            assert event.number is None
        # A reader off the bus while the other answers: reader_offline, then reader_online.
        # (A bus whose every reader is silent is the device's availability instead: offline.)
        await run.site.reader_event(HUT, 2, "offline")
        await run.until(lambda: bool(reports(run, "reader_offline")), 30.0, "reader_offline")
        assert published(run, "reader_offline", reports(run, "reader_offline")[-1]).lock == (
            f"door:{HUT}/2"
        )
        await run.site.reader_event(HUT, 2, "online")
        await run.until(lambda: bool(reports(run, "reader_online")), 30.0, "reader_online")
        assert run.online(HUT)

"""A site file declares UHPPOTE controllers beside the Modbus ones; the simulated site runs
them on their real protocol and hands the gateway options its driver takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.base import DeviceConfig
from drivers.registry import load_door_controller
from simulators.site import DEFAULT_SITE, SimulatedSite, SiteFileError, load_site


def _site(tmp_path: Path, controller: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(f"[[controllers]]\n{controller}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ('id = "g"\nkind = "uhppote"', "serial"),
        ('id = "g"\nkind = "uhppote"\nserial = 5\ndoors = 3', "doors"),
        ('id = "g"\nserial = 5', "serial"),
        ('id = "g"\nkind = "zkteco"', "kind"),
    ],
)
def test_bad_uhppote_tables_name_the_field(tmp_path: Path, table: str, field: str) -> None:
    with pytest.raises(SiteFileError, match=field):
        load_site(_site(tmp_path, table))


async def test_the_demo_site_runs_its_uhppote_controller() -> None:
    spec = load_site(DEFAULT_SITE)
    async with SimulatedSite(spec, control_port=None) as site:
        table = next(d for d in site.controller_devices() if d["driver"] == "uhppote-door")
        driver = load_door_controller(DeviceConfig(table["id"], table["driver"], table["options"]))
        async with driver:
            info = await driver.read_info()
            await driver.write_allow_list([], [])
        assert info.controller_id == "423187757"
        assert (await site.present(table["id"], 4711, 1))["granted"] is False
        await site.power_loss(table["id"])
        assert site.uhppote[table["id"]].controller().power_losses == 1

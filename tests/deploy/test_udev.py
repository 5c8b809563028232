"""deploy/udev/99-lockgate-stations.rules: well-formed udev rules that give USB-serial stations
the stable names the documentation and the gateway's configuration use, readable by the
service's group only.

udevadm is not on every machine (nor can a test plug in an adapter), so the rules are checked
against udev's rule syntax (udev(7)): comma-separated ``KEY[{attr}]<op>"value"`` items, match
operators on match keys, assignments on assignment keys, jumps to labels that exist.
"""

from __future__ import annotations

import re

import pytest

from tests.deploy.units import DEPLOY

RULES = DEPLOY / "udev" / "99-lockgate-stations.rules"

ITEM = re.compile(r'\s*([A-Z_]+)(?:\{([^}]+)\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(?:,|$)')
MATCH_KEYS = {"ACTION", "SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "KERNELS", "ATTRS", "ATTR", "ENV"}
ASSIGN_KEYS = {"SYMLINK", "GROUP", "MODE", "GOTO", "LABEL", "ENV", "OWNER", "TAG"}
VENDORS = {"0403": "FTDI", "10c4": "CP210x", "1a86": "CH340"}

Rule = list[tuple[str, str | None, str, str]]


def rules() -> list[Rule]:
    out = []
    for number, line in enumerate(RULES.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        items, pos = [], 0
        while pos < len(line):
            m = ITEM.match(line, pos)
            assert m, f"line {number}: cannot read {line[pos:]!r}"
            items.append((m.group(1), m.group(2), m.group(3), m.group(4)))
            pos = m.end()
        out.append(items)
    return out


def station_rules() -> list[Rule]:
    return [r for r in rules() if any(k == "SYMLINK" for k, *_ in r)]


def test_every_item_uses_a_known_key_with_a_fitting_operator() -> None:
    for rule in rules():
        for key, attr, op, _ in rule:
            if op in ("==", "!="):
                assert key in MATCH_KEYS, f"{key} cannot be matched"
            else:
                assert key in ASSIGN_KEYS, f"{key} cannot be assigned"
            assert (attr is not None) == (key in ("ATTRS", "ATTR", "ENV")), key


def test_jumps_land_on_a_label_at_the_end() -> None:
    all_rules = rules()
    labels = [v for r in all_rules for k, _, _, v in r if k == "LABEL"]
    gotos = {v for r in all_rules for k, _, _, v in r if k == "GOTO"}
    assert gotos and gotos <= set(labels)
    assert all_rules[-1] == [("LABEL", None, "=", labels[-1])]
    # Only tty devices, and never on removal.
    first = {(k, op, v) for k, _, op, v in all_rules[0]}
    assert ("SUBSYSTEM", "!=", "tty") in first


def test_every_station_gets_a_stable_name_for_the_dialout_group_only() -> None:
    found = station_rules()
    assert found
    for rule in found:
        items = {(k, a): (op, v) for k, a, op, v in rule}
        op, link = items[("SYMLINK", None)]
        assert op == "+="
        assert re.fullmatch(r"lockgate-station-(\$attr\{serial\}|[A-Za-z0-9-]+)", link), link
        assert items[("GROUP", None)] == ("=", "dialout")
        assert items[("MODE", None)] == ("=", "0660")
        assert items[("SUBSYSTEMS", None)] == ("==", "usb")
        assert ("ATTRS", "idVendor") in items and ("ATTRS", "idProduct") in items


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_examples_cover_the_common_adapters(vendor: str) -> None:
    vendors = {
        dict(((k, a), v) for k, a, _, v in r)[("ATTRS", "idVendor")] for r in station_rules()
    }
    assert vendor in vendors, f"no {VENDORS[vendor]} example"


def test_names_without_a_serial_number_fall_back_to_the_usb_port() -> None:
    by_port = [r for r in station_rules() if any(k == "ENV" and a == "ID_PATH" for k, a, *_ in r)]
    assert by_port, "adapters without a serial number need a rule by USB port"


def test_the_documented_udevadm_commands_are_named() -> None:
    text = RULES.read_text()
    for hint in ("udevadm info --attribute-walk", "udevadm control --reload-rules", "udevadm test"):
        assert hint in text

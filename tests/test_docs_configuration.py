"""docs/configuration.md documents exactly the settings of ``gateway.config.Settings`` (each
option with its default and its environment variable) and exactly the options of every
installed driver; its TOML examples are valid configurations."""

from __future__ import annotations

import json
import re
import tomllib
import typing
from datetime import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from drivers.base import DeviceConfig
from drivers.registry import available_drivers, load_driver, load_driver_class
from gateway.config import Settings, load_settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
ENV_PREFIX = "LOCKGATE_"
NO_ENV = "—"

ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|(.*)\|\s*$")


# ------------------------------------------------------------------ the model


def _model_in(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The settings model a field holds, and whether it holds a list of them."""
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        return (
            (item, True)
            if isinstance(item, type) and issubclass(item, BaseModel)
            else (
                None,
                False,
            )
        )
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


def as_toml(field: FieldInfo) -> str:
    """A field's default as written in docs/configuration.md (TOML, ``unset``, ``required``)."""
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value)
    raise AssertionError(f"no TOML rendering for {value!r}")


def model_options(
    model: type[BaseModel], prefix: str = "", env: str | None = ENV_PREFIX
) -> dict[str, tuple[str, str]]:
    """Every option under ``model``: dotted name -> (default, environment variable)."""
    out: dict[str, tuple[str, str]] = {}
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        variable = f"{env}{name.upper()}" if env is not None else NO_ENV
        sub, is_list = _model_in(field.annotation)
        if sub is None:
            out[dotted] = (as_toml(field), variable)
        elif is_list:
            # Only the whole list can come from the environment (as JSON).
            out[dotted] = (as_toml(field), variable)
            out.update(model_options(sub, f"{dotted}[].", None))
        else:
            out.update(
                model_options(sub, f"{dotted}.", f"{variable}__" if env is not None else None)
            )
    return out


# ------------------------------------------------------------------ the document


def section(text: str, title: str) -> str:
    """The text of the ``## title`` section."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/configuration.md has no section '## {title}'"
    return match.group(1)


def rows(text: str) -> dict[str, list[str]]:
    """Table rows whose first cell is a `name`: name -> the other cells, stripped."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = ROW.match(line)
        if m is None:
            continue
        name = m.group(1)
        assert name not in out, f"{name} is documented twice"
        out[name] = [c.strip() for c in m.group(2).split("|")]
    return out


def cell(text: str) -> str:
    return text.strip().strip("`")


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_every_setting_is_documented_and_nothing_else(doc: str) -> None:
    documented = rows(section(doc, "Settings"))
    expected = model_options(Settings)
    missing = sorted(set(expected) - set(documented))
    unknown = sorted(set(documented) - set(expected))
    assert not missing, f"options missing from docs/configuration.md: {missing}"
    assert not unknown, f"docs/configuration.md names options that do not exist: {unknown}"


def test_defaults_and_environment_variables_match_the_model(doc: str) -> None:
    documented = rows(section(doc, "Settings"))
    wrong = []
    for name, (default, variable) in model_options(Settings).items():
        cells = documented[name]
        assert len(cells) == 4, f"{name}: expected type | default | environment | description"
        _type, doc_default, doc_variable, description = cells
        if cell(doc_default) != default:
            wrong.append(f"{name}: default {doc_default} in the document, {default} in the model")
        if cell(doc_variable) != variable:
            wrong.append(f"{name}: variable {doc_variable} in the document, {variable} expected")
        if not description:
            wrong.append(f"{name}: no description")
    assert not wrong, "\n".join(wrong)


def test_documented_environment_variables_really_set_the_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOCKGATE_MQTT__PORT", "18883")
    monkeypatch.setenv("LOCKGATE_SITE__WORKING_DAY_END", "16:30")
    monkeypatch.setenv("LOCKGATE_MQTT__CLIENT_OPERATORS", '{"hr-feed": "hr-integration"}')
    monkeypatch.setenv(
        "LOCKGATE_STATIONS",
        '[{"id": "desk-1", "driver": "serial-station", "options": {"port": "/dev/ttyUSB0"},'
        ' "operated": true}]',
    )
    s = load_settings()
    assert s.mqtt.port == 18883
    assert s.site.working_day_end == time(16, 30)
    assert s.mqtt.client_operators == {"hr-feed": "hr-integration"}
    assert [(d.id, d.operated, d.options) for d in s.stations] == [
        ("desk-1", True, {"port": "/dev/ttyUSB0"})
    ]


def toml_examples(text: str) -> list[str]:
    return re.findall(r"^```toml\n(.*?)^```", text, re.M | re.S)


def test_toml_examples_are_valid_configurations(doc: str, tmp_path: Path) -> None:
    examples = toml_examples(doc)
    assert examples, "docs/configuration.md has no TOML example"
    for i, example in enumerate(examples):
        path = tmp_path / f"example{i}.toml"
        path.write_text(example, encoding="utf-8")
        settings = load_settings(path)
        # Each device's options are accepted by its driver (nothing is opened).
        for device in [*settings.stations, *settings.controllers]:
            load_driver(DeviceConfig(device.id, device.driver, dict(device.options)))


# ------------------------------------------------------------------ driver options


def driver_sections(text: str) -> dict[str, str]:
    """``### `name`: ...`` subsections of "Driver options": driver name -> text."""
    part = section(text, "Driver options")
    found = re.findall(r"^### `([^`]+)`[^\n]*\n(.*?)(?=^### |\Z)", part, re.M | re.S)
    return dict(found)


def known_options(driver: str) -> set[str]:
    """The options a driver accepts, as its own error for an unknown option lists them."""
    cls = load_driver_class(driver)
    with pytest.raises(ValueError, match=r"unknown option") as err:
        cls.from_options({"no-such-option": 1})
    listed = re.search(r"known: ([^)]*)\)", str(err.value))
    assert listed, f"{driver}: the unknown-option error does not list the known options"
    return {o.strip() for o in listed.group(1).split(",")}


def test_every_installed_driver_is_documented(doc: str) -> None:
    assert set(driver_sections(doc)) == set(available_drivers())


@pytest.mark.parametrize("driver", sorted(available_drivers()))
def test_driver_options_are_documented_and_nothing_else(doc: str, driver: str) -> None:
    documented = set(rows(driver_sections(doc)[driver]))
    known = known_options(driver)
    assert documented == known, (
        f"{driver}: missing from the document {sorted(known - documented)}, "
        f"not accepted by the driver {sorted(documented - known)}"
    )


@pytest.mark.parametrize(
    ("driver", "required"),
    [
        ("serial-station", {"port": "/dev/ttyUSB0"}),
        ("modbus-door", {"host": "127.0.0.1"}),
        ("osdp-reader", {"port": "/dev/ttyUSB0", "state_dir": "/var/lib/lockgate/osdp"}),
        ("uhppote-door", {"serial": 1, "address": "127.0.0.1", "timezone": "UTC"}),
    ],
)
def test_documented_driver_defaults_are_accepted(
    doc: str, driver: str, required: dict[str, Any]
) -> None:
    """Each default written as one TOML value is accepted by the driver."""
    table = rows(driver_sections(doc)[driver])
    tried = 0
    for name, cells in table.items():
        try:
            value = tomllib.loads(f"v = {cell(cells[1])}")["v"]
        except tomllib.TOMLDecodeError:
            continue  # "required", "the table's id", ...
        load_driver_class(driver).from_options({**required, name: value})
        tried += 1
    assert tried >= 3


@pytest.mark.parametrize("name", ["configuration.md", "operations.md"])
def test_options_named_in_the_text_exist(name: str) -> None:
    """Prose that names an option (`mqtt.client_id`) names one that exists."""
    text = (DOC.parent / name).read_text(encoding="utf-8")
    options = model_options(Settings)
    sections = {o.split(".")[0].split("[")[0] for o in options}
    pattern = r"`((?:" + "|".join(sorted(sections)) + r")(?:\[\])?\.[a-z_]+)`"
    named = set(re.findall(pattern, text))
    assert named, f"{name} names no option"
    unknown = sorted(named - set(options))
    assert not unknown, f"{name} names options that do not exist: {unknown}"

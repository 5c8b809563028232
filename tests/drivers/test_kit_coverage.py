"""Every installed driver runs the conformance kit of its role (``tests/drivers/conformance.py``):
a driver added without a conformance test fails here."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import tests.drivers
from drivers.base import DoorController, KeyStation
from drivers.registry import available_drivers, load_driver_class
from tests.drivers.conformance import DoorControllerContract, KeyStationContract


def _kit_subjects() -> dict[type[object], set[type[object]]]:
    """For each contract of the kit, the driver classes some conformance module tests."""
    found: dict[type[object], set[type[object]]] = {
        DoorControllerContract: set(),
        KeyStationContract: set(),
    }
    root = Path(tests.drivers.__file__).parent
    for info in pkgutil.iter_modules([str(root)]):
        if not info.ispkg:
            continue
        name = f"tests.drivers.{info.name}.test_conformance"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        drivers = {
            v for v in vars(module).values() if isinstance(v, type) and hasattr(v, "from_options")
        }
        for contract in found:
            if any(
                isinstance(v, type) and issubclass(v, contract) and v is not contract
                for v in vars(module).values()
            ):
                found[contract] |= drivers
    return found


@pytest.mark.parametrize("name", sorted(available_drivers()))
def test_every_driver_runs_the_kit_of_its_role(name: str) -> None:
    cls = load_driver_class(name)
    subjects = _kit_subjects()
    if issubclass(cls, DoorController):
        assert cls in subjects[DoorControllerContract], f"{name}: no door conformance test"
    elif issubclass(cls, KeyStation):
        assert cls in subjects[KeyStationContract], f"{name}: no station conformance test"
    else:  # pragma: no cover - the registry only loads Driver subclasses
        pytest.fail(f"{name}: neither a door controller nor a key station")

"""Find drivers by name through the ``lockgate.drivers`` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points

from drivers.base import DeviceConfig, DoorController, Driver, KeyStation

GROUP = "lockgate.drivers"


def available_drivers() -> dict[str, str]:
    """Names of every installed driver, mapped to the object they point at."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def load_driver_class(name: str) -> type[Driver]:
    """Import the driver class registered as ``name``.

    Raises ``LookupError`` listing the installed drivers when there is none by that name."""
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Driver)):
                raise LookupError(f"driver {name!r} ({ep.value}) is not a lockgate Driver class")
            return cls
    known = ", ".join(sorted(available_drivers())) or "none"
    raise LookupError(f"no driver named {name!r} is installed (installed: {known})")


def load_driver(config: DeviceConfig) -> Driver:
    """Build the driver a device's configuration asks for."""
    cls = load_driver_class(config.driver)
    return cls.from_options({"device_id": config.device_id, **dict(config.options)})


def load_key_station(config: DeviceConfig) -> KeyStation:
    driver = load_driver(config)
    if not isinstance(driver, KeyStation):
        raise LookupError(
            f"device {config.device_id}: driver {config.driver!r} is not a key station"
        )
    return driver


def load_door_controller(config: DeviceConfig) -> DoorController:
    driver = load_driver(config)
    if not isinstance(driver, DoorController):
        raise LookupError(
            f"device {config.device_id}: driver {config.driver!r} is not a door controller"
        )
    return driver

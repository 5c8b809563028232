"""``lockgate devices``: door hardware maintenance.

``discover --uhppote`` lists the UHPPOTE controllers answering a search (a broadcast, or any
address). ``install-key`` is the install mode of an OSDP reader still on its factory default
key: an explicit operator action (role action ``manage_devices``), recorded in the audit log
before the reader is touched and again with its outcome. The bus has one panel: run it while
``lockgate run`` is stopped (the port is opened exclusively).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from drivers.base import DeviceConfig, DeviceUnavailable, DriverError
from drivers.osdp import OsdpReaderDriver
from drivers.registry import load_door_controller
from drivers.uhppote.discover import DEFAULT_ADDRESS, check_search, discover
from gateway.audit import log as audit_log
from gateway.auth import manage
from gateway.auth.authorizer import Authorizer, Forbidden
from gateway.auth.roles import MANAGE_DEVICES
from gateway.cli.common import (
    STATE,
    authenticate,
    console,
    database,
    fail,
    operator_name,
    print_json,
)
from gateway.domain.timeutil import utcnow
from gateway.store import migrate

BAD_INPUT = 2

devices_app = typer.Typer(
    help="Door hardware: find UHPPOTE controllers, install OSDP reader keys.",
    no_args_is_help=True,
)


@devices_app.command("discover")
def devices_discover(
    uhppote: Annotated[
        bool, typer.Option("--uhppote", help="Search for UHPPOTE access controllers.")
    ] = False,
    address: Annotated[
        str,
        typer.Option(
            "--address", help="Where the search goes: a broadcast or controller address[:port]."
        ),
    ] = DEFAULT_ADDRESS,
    bind: Annotated[
        str, typer.Option("--bind", help="Local IPv4 address (interface) to send from.")
    ] = "0.0.0.0",
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for answers.")] = 2.5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the controllers answering a search, with their serial number and address."""
    try:
        check_search(address, bind, timeout)
    except ValueError as exc:
        name, _, reason = str(exc).partition(": ")
        option = {"address": "--address", "bind": "--bind", "timeout_s": "--timeout"}
        fail(f"{option.get(name, name)}: {reason}", BAD_INPUT)
    if not uhppote:
        fail("name the kind of controller to search for: --uhppote", BAD_INPUT)
    try:
        found = asyncio.run(discover(address, bind=bind, timeout_s=timeout))
    except DeviceUnavailable as exc:
        fail(str(exc))
    if as_json:
        print_json([f.as_dict() for f in found])
        return
    if not found:
        console.print(f"no UHPPOTE controller answered a search sent to {address}")
        return
    for f in found:
        console.print(
            f"{f.serial}  {f.address}  mask {f.netmask}  gateway {f.gateway}  mac {f.mac}  "
            f"firmware {f.firmware}"
        )


def _osdp_controller(controller: str, door: int) -> OsdpReaderDriver:
    """The configured OSDP device ``controller`` with a reader on ``door``; fail otherwise,
    naming the argument (nothing is recorded or touched)."""
    configured = {c.id: c for c in STATE.settings.controllers}
    c = configured.get(controller)
    if c is None:
        fail(
            f"CONTROLLER: no controller {controller!r} is configured "
            f"(configured: {', '.join(configured) or 'none'})",
            BAD_INPUT,
        )
    if c.driver != "osdp-reader":
        fail(f"CONTROLLER: {controller} is a {c.driver}, not an osdp-reader bus", BAD_INPUT)
    try:
        driver = load_door_controller(DeviceConfig(c.id, c.driver, dict(c.options)))
    except (ValueError, LookupError) as exc:
        fail(f"CONTROLLER: {controller}: {exc}", BAD_INPUT)
    assert isinstance(driver, OsdpReaderDriver)
    try:
        driver.options.reader_for_door(door)
    except ValueError as exc:
        fail(f"--door: {exc}", BAD_INPUT)
    return driver


@devices_app.command("install-key")
def devices_install_key(
    controller: Annotated[str, typer.Argument(help="The osdp-reader device (its id).")],
    door: Annotated[
        int, typer.Option("--door", min=1, max=8, help="The door whose reader gets its key.")
    ],
    timeout: Annotated[
        float, typer.Option("--timeout", min=1.0, max=300.0, help="Seconds to wait for the reader.")
    ] = 20.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Install mode: give a reader still on its factory default key (SCBK-D) its own key from
    the key file, over a secure channel accepted with the default key this once. Audited."""
    actor = operator_name()
    driver = _osdp_controller(controller, door)
    subject = f"device {controller}"
    db = database()
    try:
        try:
            migrate.check_up_to_date(db.url)
        except Exception as exc:
            fail(str(exc))
        authenticate(db)
        try:
            with db.session() as s:
                Authorizer(authenticated={actor}).require(s, actor, MANAGE_DEVICES)
                audit_log.append(
                    s,
                    at=utcnow(),
                    actor=actor,
                    action="device.install_key",
                    subjects=[subject],
                    data={"door": door, "step": "requested"},
                )
        except Forbidden as exc:
            manage.record_refusal(
                db,
                at=utcnow(),
                actor=actor,
                action="device.install_key",
                subjects=[subject],
                error=exc,
            )
            fail(f"{exc.code}: {exc}")
        try:
            result = asyncio.run(driver.install_key(door, timeout_s=timeout))
            outcome: dict[str, object] = {
                "door": result.door,
                "address": result.address,
                "installed": result.installed,
                "detail": result.detail,
            }
        except DriverError as exc:
            outcome = {"door": door, "installed": False, "detail": f"{type(exc).__name__}: {exc}"}
        with db.session() as s:
            audit_log.append(
                s,
                at=utcnow(),
                actor=actor,
                action="device.install_key",
                subjects=[subject],
                data={**outcome, "step": "done"},
            )
    finally:
        db.dispose()
    if as_json:
        print_json(outcome)
    else:
        verb = "installed" if outcome["installed"] else "NOT installed"
        console.print(f"{controller} door {door}: key {verb}: {outcome['detail']}")
    if not outcome["installed"]:
        raise typer.Exit(1)


__all__ = ["devices_app"]

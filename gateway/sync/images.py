"""From desired state to what a device must hold: key images and controller allow-lists in
the drivers' data types (:mod:`drivers.base`). Pure functions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from drivers.base import (
    AccessEntry,
    AllowEntry,
    BlacklistEntry,
    HardwareSchedule,
    KeyImage,
    ScheduleWindow,
)
from gateway.domain.timeutil import WeeklySchedule
from gateway.rules.engine import RulesEngine
from gateway.rules.evaluate import DesiredCredential, schedule_text
from gateway.rules.hardware import DesiredController, KeyExposure


def hardware_schedule(schedule_id: int, schedule: WeeklySchedule) -> HardwareSchedule:
    """A weekly schedule as devices store it (local minutes, Monday = bit 0)."""

    def minute(t: time) -> int:
        return t.hour * 60 + t.minute

    return HardwareSchedule(
        schedule_id,
        tuple(
            ScheduleWindow(
                days_mask=sum(1 << d for d in iv.days),
                start_minute=minute(iv.start),
                end_minute=1440 if iv.end == time(0, 0) else minute(iv.end),
            )
            for iv in schedule.intervals
        ),
    )


@dataclass(frozen=True, slots=True)
class PlannedImage:
    """The image a key must get, with what the gateway records once it is confirmed."""

    image: KeyImage
    credential_revision: str | None
    cylinders: tuple[str, ...]
    lapses_at: datetime | None
    blacklists: dict[str, int]

    def exposure(self) -> KeyExposure:
        return KeyExposure(self.image.serial, frozenset(self.cylinders), self.lapses_at)


def _image_revision(parts: list[str]) -> str:
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


def plan_key_image(
    engine: RulesEngine,
    serial: str,
    now: datetime,
    blacklist_versions: dict[str, tuple[int, tuple[str, ...]]],
) -> PlannedImage:
    """The image key ``serial`` must hold when it is at a station at ``now``.

    An inactive or revoked key gets an empty, disabled image (it then opens nothing). An
    enabled key gets one access entry per cylinder and grant, its validity window, a
    revalidation deadline ``now + revalidation_days``, and the current blacklist of every
    cylinder it opens, so that it carries revocations to those cylinders.
    ``blacklist_versions`` maps cylinder -> (version, serials) from the store.
    """
    state: DesiredCredential | None = engine.state(serial)
    if state is None or not state.enabled or not state.grants:
        revision = _image_revision([serial, "disabled", state.revision if state else "-"])
        image = KeyImage(
            serial=serial,
            revision=revision,
            enabled=False,
            valid_from=None,
            valid_until=None,
            revalidate_by=None,
        )
        return PlannedImage(image, state.revision if state else None, (), None, {})
    schedules: dict[WeeklySchedule, int] = {}
    for g in state.grants:
        if g.schedule is not None and g.schedule not in schedules:
            schedules[g.schedule] = len(schedules) + 1
    access: list[AccessEntry] = []
    cylinders: set[str] = set()
    for g in state.grants:
        space = engine.facts.spaces.get(g.space_id)
        if space is None:
            continue
        sid = schedules[g.schedule] if g.schedule is not None else 0
        for c in space.cylinders:
            cylinders.add(c)
            access.append(AccessEntry(int(c), g.window.start, g.window.end, sid))
    access.sort(key=lambda a: (a.cylinder, a.valid_from or datetime.min.replace(tzinfo=now.tzinfo)))
    revalidate_by = (
        (now + timedelta(days=state.revalidation_days)).replace(microsecond=0)
        if state.revalidation_days
        else None
    )
    carried: list[BlacklistEntry] = []
    versions: dict[str, int] = {}
    for c in sorted(cylinders, key=int):
        version, serials = blacklist_versions.get(c, (0, ()))
        if version > 0:
            carried.append(BlacklistEntry(int(c), version, serials))
            versions[c] = version
    window = state.window
    ends = [t for t in (window.end if window else None, revalidate_by) if t is not None]
    revision = _image_revision(
        [serial, state.revision, revalidate_by.isoformat() if revalidate_by else "-"]
        + [f"{c}:{v}" for c, v in sorted(versions.items())]
        + [schedule_text(s) for s in schedules]
    )
    image = KeyImage(
        serial=serial,
        revision=revision,
        enabled=True,
        valid_from=window.start if window else None,
        valid_until=window.end if window else None,
        revalidate_by=revalidate_by,
        schedules=tuple(hardware_schedule(i, s) for s, i in schedules.items()),
        access=tuple(access),
        blacklists=tuple(carried),
    )
    return PlannedImage(
        image,
        state.revision,
        tuple(sorted(cylinders, key=int)),
        min(ends) if ends else None,
        versions,
    )


def exposure_of_image(image: KeyImage, now: datetime) -> KeyExposure:
    """What a key image read from a key lets it open: its cylinders until it lapses."""
    if not image.enabled:
        return KeyExposure(image.serial, frozenset(), None)
    ends = [t for t in (image.valid_until, image.revalidate_by) if t is not None]
    lapses = min(ends) if ends else None
    cylinders = frozenset(
        str(a.cylinder) for a in image.access if a.valid_until is None or a.valid_until > now
    )
    return KeyExposure(image.serial, cylinders, lapses)


def allow_list(desired: DesiredController) -> tuple[list[AllowEntry], list[HardwareSchedule]]:
    """A controller's desired allow-list in the driver's types."""
    entries = [
        AllowEntry(
            credential=int(e.credential),
            doors_mask=sum(1 << (d - 1) for d in e.doors),
            valid_from=e.window.start,
            valid_until=e.window.end,
            schedule_id=desired.schedule_id(e.schedule),
        )
        for e in desired.entries
    ]
    schedules = [hardware_schedule(i + 1, s) for i, s in enumerate(desired.schedules)]
    return entries, schedules

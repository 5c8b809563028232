"""From what a controller holds to what it should hold: profile ids and the order of writes.
Pure functions, no I/O.

The device has no atomic commit: every card record and every time profile is written by its
own request. The plan makes every intermediate state safe:

1. **Deletes** of cards that are no longer wanted.
2. **Narrowing updates** of cards (a door lost or given a schedule, dates shortened, a PIN
   added or changed) whose profiles are already in place.
3. **New profile chains**, written to ids that no card refers to (copy on write: a profile a
   card refers to is never changed in place), last profile of a chain first.
4. Narrowing updates that refer to the new chains.
5. **Widening updates and new cards.**

One request changes one record, so each card holds its old or its new rights at every instant;
no revocation waits behind a grant; and a card never refers to a profile that is not yet
written (a controller lets a card pass when its profile is missing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from drivers.uhppote.records import (
    ALWAYS,
    NEVER,
    PROFILE_IDS,
    Card,
    Chain,
    DesiredTable,
    EncodeError,
    Profile,
    Rule,
    RuleSet,
    Table,
)

ANY_TIME: RuleSet = frozenset({Rule(0)})


@dataclass(frozen=True, slots=True)
class PutCard:
    card: Card


@dataclass(frozen=True, slots=True)
class DeleteCard:
    number: int


@dataclass(frozen=True, slots=True)
class SetProfile:
    profile: Profile


Step = PutCard | DeleteCard | SetProfile


@dataclass(frozen=True, slots=True)
class Plan:
    steps: tuple[Step, ...]
    target: Table
    """What the controller holds once every step is done."""
    revocations: int = 0
    """How many of the first steps are revocations (deletes and narrowing updates)."""
    profiles_reused: int = 0
    notes: tuple[str, ...] = field(default=())


def _find_chain(chain: Chain, profiles: Mapping[int, Profile], taken: set[int]) -> list[int] | None:
    """Ids of a chain the controller already holds with exactly this content."""
    for head in sorted(profiles):
        if head in taken or profiles[head].content != chain[0]:
            continue
        ids = [head]
        ok = True
        for content in chain[1:]:
            nxt = profiles[ids[-1]].linked
            if (
                nxt not in profiles
                or nxt in ids
                or nxt in taken
                or profiles[nxt].content != content
            ):
                ok = False
                break
            ids.append(nxt)
        if ok and profiles[ids[-1]].linked == 0:
            return ids
    return None


def assign_profiles(
    desired: DesiredTable, current: Table
) -> tuple[dict[RuleSet, int], dict[int, Profile], list[Profile]]:
    """Profile ids for the desired chains.

    Returns the head id of each rule set, every profile the target table has, and the
    profiles to write (new chains, on ids that no current card can reach)."""
    busy = current.reachable_profiles()
    taken: set[int] = set()
    heads: dict[RuleSet, int] = {}
    profiles: dict[int, Profile] = {}
    fresh: list[tuple[RuleSet, Chain]] = []
    for rules, chain in sorted(desired.chains.items(), key=lambda kv: (len(kv[1]), kv[1])):
        found = _find_chain(chain, current.profiles, taken)
        if found is None:
            fresh.append((rules, chain))
            continue
        taken.update(found)
        heads[rules] = found[0]
        for pid in found:
            profiles[pid] = current.profiles[pid]
    free = [pid for pid in PROFILE_IDS if pid not in busy and pid not in taken]
    needed = sum(len(chain) for _, chain in fresh)
    if needed > len(free):
        raise EncodeError(
            "schedules",
            f"the schedules need {needed} new time profiles and only {len(free)} of the "
            f"controller's {len(PROFILE_IDS)} are free",
        )
    writes: list[Profile] = []
    for rules, chain in fresh:
        ids = [free.pop(0) for _ in chain]
        links = [*ids[1:], 0]
        new = [
            Profile(pid, content, link)
            for pid, content, link in zip(ids, chain, links, strict=True)
        ]
        heads[rules] = ids[0]
        for profile in new:
            profiles[profile.profile_id] = profile
        writes += reversed(new)
    return heads, profiles, writes


def narrows(old: Card, new: Card) -> bool:
    """True when ``new`` takes away anything ``old`` allowed (or may, for a schedule change)."""
    if new.start > old.start or new.end < old.end:
        return True
    if new.pin != old.pin and new.pin != 0:
        return True
    return any(o != n and o != NEVER for o, n in zip(old.doors, new.doors, strict=True))


def plan(desired: DesiredTable, current: Table) -> Plan:
    """The ordered writes that take the controller from ``current`` to ``desired``."""
    heads, profiles, profile_writes = assign_profiles(desired, current)
    fresh_ids = {p.profile_id for p in profile_writes}
    cards: dict[int, Card] = {}
    for number, d in desired.cards.items():
        p1, p2, p3, p4 = (
            NEVER if not rules else ALWAYS if rules == ANY_TIME else heads[rules]
            for rules in d.doors
        )
        cards[number] = Card(number, d.start, d.end, (p1, p2, p3, p4), d.pin)
    deletes = [DeleteCard(n) for n in sorted(set(current.cards) - set(cards))]
    narrow_ready: list[Step] = []
    narrow_later: list[Step] = []
    widen: list[Step] = []
    for number in sorted(cards):
        card = cards[number]
        old = current.cards.get(number)
        if old == card:
            continue
        if old is None or not narrows(old, card):
            widen.append(PutCard(card))
        elif card.profile_ids() & fresh_ids:
            narrow_later.append(PutCard(card))
        else:
            narrow_ready.append(PutCard(card))
    steps: list[Step] = [
        *deletes,
        *narrow_ready,
        *(SetProfile(p) for p in profile_writes),
        *narrow_later,
        *widen,
    ]
    held = {**current.profiles, **{p.profile_id: p for p in profile_writes}}
    target = Table(cards, {pid: held[pid] for pid in sorted(held)})
    return Plan(
        steps=tuple(steps),
        target=target,
        revocations=len(deletes) + len(narrow_ready) + len(narrow_later),
        profiles_reused=len(profiles) - len(profile_writes),
    )


__all__ = [
    "DeleteCard",
    "Plan",
    "PutCard",
    "SetProfile",
    "Step",
    "assign_profiles",
    "narrows",
    "plan",
]

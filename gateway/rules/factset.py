"""An in-memory, indexed set of facts: what the rules engine derives from.

Applying or removing a fact returns the numbers of the credentials whose derivation may
depend on it, so the engine recomputes only those. Indexes are keyed by the ids that facts
*refer to*, whether or not the referenced fact exists yet: facts may arrive in any order.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from datetime import date, datetime
from typing import Any, overload

from pydantic import BaseModel

from gateway.domain.facts import (
    AccessApplication,
    ApplicationEntry,
    ApplicationStatus,
    Assignment,
    Competence,
    Credential,
    DeliveryManifest,
    Employment,
    Fact,
    KeyGrantAgreement,
    KeyOrder,
    Organisation,
    Person,
    Receipt,
    Space,
    VisitorCard,
    fact_key,
)
from gateway.domain.timeutil import Window

_FIELD_SETS: dict[type, list[set[str]]] = {}
"""Per model, the field-name sets met so far (a model has a few: which optional fields a
fact was given); the first instance's set becomes the shared one."""
_VALUES: dict[tuple[type, date, object], date] = {}
_POOL_LIMIT = 50_000
_REPEATED_TEXT: frozenset[str] = frozenset({"org_number", "main_contractor", "code", "first_name"})
"""Text fields whose few values repeat in many facts (every employee names the employer's
organisation number; validation makes each a string of its own): shared like dates."""
_TEXTS: dict[str, str] = {}


def compact(fact: BaseModel) -> None:
    """Make a fact held for the life of the engine smaller, without changing it: equal
    dates and instants are shared (a site repeats a few validity dates in every fact), as
    are the texts of a few fields that repeat (organisation numbers, competence codes), and
    so is the set of the names of the fields set at validation (one per model and set of
    fields instead of one per instance; pydantic copies it before changing a copy's). Nested
    models (an employment's ID06 card, an application's entries) are compacted too.

    At 100k credentials this is about a fifth of what the facts take."""
    if not type(fact).model_config.get("frozen"):
        return  # only a frozen model never changes its field-name set in place
    held = fact.__dict__
    fields_set = fact.__pydantic_fields_set__
    known_sets = _FIELD_SETS.setdefault(type(fact), [])
    for shared in known_sets:
        if shared is fields_set:
            break
        if shared == fields_set:
            object.__setattr__(fact, "__pydantic_fields_set__", shared)
            break
    else:
        if len(known_sets) < 64:
            known_sets.append(fields_set)
    for name, value in held.items():
        kind = type(value)
        if kind is str:
            if name in _REPEATED_TEXT:
                known_text = _TEXTS.get(value)
                if known_text is None:
                    if len(_TEXTS) > _POOL_LIMIT:
                        _TEXTS.clear()
                    _TEXTS[value] = value
                elif known_text is not value:
                    held[name] = known_text
        elif kind in _PLAIN:
            continue  # nothing to share in these
        elif kind is tuple:
            if value and type(value[0]) is not str and isinstance(value[0], BaseModel):
                for item in value:
                    if isinstance(item, BaseModel):
                        compact(item)
        elif kind in _NESTED_DONE and _NESTED_DONE[kind].get(id(value)) is value:
            continue  # a nested model met before (an entry's schedule, shared by many)
        elif kind is date or isinstance(value, date):
            # Keyed with the type and zone too: equal instants in other zones stay apart.
            pool_key = (kind, value, None if kind is date else getattr(value, "tzinfo", None))
            known = _VALUES.get(pool_key)
            if known is None:
                if len(_VALUES) > _POOL_LIMIT:
                    _VALUES.clear()
                _VALUES[pool_key] = value
            elif known is not value:
                held[name] = known
        elif isinstance(value, BaseModel):
            compact(value)
            _remember_nested(value)
        elif isinstance(value, tuple) and value and isinstance(value[0], BaseModel):
            for item in value:
                if isinstance(item, BaseModel):
                    compact(item)


_PLAIN: frozenset[type] = frozenset({type(None), bool, int, float})
_NESTED_DONE: dict[type, dict[int, BaseModel]] = {}
"""Nested models already compacted, by identity (held, so an id is not reused while
listed): a schedule is one object shared by the entries that name it, compacted once.
A few per type (a model nested in one fact only, such as an ID06 card, passes through)."""


def _remember_nested(value: BaseModel) -> None:
    done = _NESTED_DONE.setdefault(type(value), {})
    if len(done) >= 256:
        done.clear()
    done[id(value)] = value


def _share_id(model: BaseModel, name: str, held: Mapping[str, Person | Employment]) -> None:
    """Let ``model``'s field ``name`` (an id of another fact) be the very string the engine
    holds that fact under in ``held``, when it holds it: one string per id instead of one
    per fact naming it (a person's id is named by its employments and competences, an
    employment's by its credentials and application entries)."""
    value = model.__dict__.get(name)
    other = None if value is None else held.get(value)
    if other is not None and other.id is not value and other.id == value:
        model.__dict__[name] = other.id


def _share_space_ids(entry: ApplicationEntry, spaces: Mapping[str, Space]) -> None:
    """Let the space ids an entry names be the very strings the engine holds those spaces
    under (an equal tuple of them): at 100k credentials entries name a few hundred
    spaces 350 000 times, each name otherwise a string of its own."""
    held = entry.__dict__
    ids = held.get("space_ids")
    if not ids:
        return
    shared = []
    changed = False
    for space_id in ids:
        space = spaces.get(space_id)
        if space is not None and space.id is not space_id and space.id == space_id:
            space_id = space.id
            changed = True
        shared.append(space_id)
    if changed:
        held["space_ids"] = tuple(shared)


def space_digest(space: Space) -> str:
    """A short digest of what a space makes a credential open (its locks and revalidation)."""
    text = repr(
        (
            space.cylinders,
            tuple((d.controller_id, d.door) for d in space.doors),
            space.revalidation_days,
        )
    )
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


class Links:
    """An index from an id to the ids linked to it (an employment's credentials, a person's
    employments), compact where almost every key has one: a single id is held as itself,
    several as a set (an empty set is 216 bytes, for 100k keys twice over at 100k
    credentials). Reads give a set-like collection, as a ``defaultdict(set)`` would."""

    __slots__ = ("_links",)

    def __init__(self) -> None:
        self._links: dict[str, str | set[str]] = {}

    def add(self, key: str, value: str) -> None:
        """Link ``value`` to ``key``."""
        held = self._links.get(key)
        if held is None:
            self._links[key] = value
        elif isinstance(held, str):
            if held != value:
                self._links[key] = {held, value}
        else:
            held.add(value)

    def discard(self, key: str, value: str) -> None:
        """Unlink ``value`` from ``key`` when linked."""
        held = self._links.get(key)
        if held is None:
            return
        if isinstance(held, str):
            if held == value:
                del self._links[key]
            return
        held.discard(value)
        if len(held) == 1:
            self._links[key] = next(iter(held))
        elif not held:
            del self._links[key]

    def get(
        self, key: str, default: AbstractSet[str] | tuple[()] = frozenset()
    ) -> AbstractSet[str] | tuple[()]:
        """The ids linked to ``key`` (a set), or ``default`` when none."""
        held = self._links.get(key)
        if held is None:
            return default
        if isinstance(held, str):
            return frozenset((held,))
        return held

    def gather(self, keys: Iterable[str]) -> set[str]:
        """The ids linked to any of ``keys``, in one new set."""
        out: set[str] = set()
        links = self._links
        for key in keys:
            held = links.get(key)
            if held is None:
                continue
            if type(held) is str:
                out.add(held)
            else:
                out.update(held)
        return out

    def __getitem__(self, key: str) -> AbstractSet[str]:
        held = self._links[key]
        return frozenset((held,)) if isinstance(held, str) else held

    def __contains__(self, key: object) -> bool:
        return key in self._links

    def __len__(self) -> int:
        return len(self._links)


def _first(pair: tuple[str, ApplicationEntry]) -> str:
    return pair[0]


class EntryIndex:
    """For each employment, its entry in each assignment's latest approved revision,
    compact where almost every employment has one: a single entry is held as the pair
    ``(assignment id, entry)`` instead of a dict of one (about 200 bytes less, 100k times at
    100k credentials). Reads give a mapping from assignment id to entry."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[str, tuple[str, ApplicationEntry] | dict[str, ApplicationEntry]] = {}

    def put(self, employment_id: str, assignment_id: str, entry: ApplicationEntry) -> None:
        """Record ``entry`` as the employment's entry in ``assignment_id``."""
        held = self._held.get(employment_id)
        if held is None or (isinstance(held, tuple) and held[0] == assignment_id):
            self._held[employment_id] = (assignment_id, entry)
        elif isinstance(held, tuple):
            self._held[employment_id] = {held[0]: held[1], assignment_id: entry}
        else:
            held[assignment_id] = entry

    def pop(self, employment_id: str, assignment_id: str) -> None:
        """Forget the employment's entry in ``assignment_id``, if any."""
        held = self._held.get(employment_id)
        if held is None:
            return
        if isinstance(held, tuple):
            if held[0] == assignment_id:
                del self._held[employment_id]
            return
        held.pop(assignment_id, None)
        if len(held) == 1:
            ((only, entry),) = held.items()
            self._held[employment_id] = (only, entry)
        elif not held:
            del self._held[employment_id]

    @overload
    def get(self, employment_id: str) -> Mapping[str, ApplicationEntry] | None: ...

    @overload
    def get(
        self, employment_id: str, default: Mapping[str, ApplicationEntry]
    ) -> Mapping[str, ApplicationEntry]: ...

    def get(
        self, employment_id: str, default: Mapping[str, ApplicationEntry] | None = None
    ) -> Mapping[str, ApplicationEntry] | None:
        """Assignment id -> entry for the employment, or ``default`` when it has none."""
        held = self._held.get(employment_id)
        if held is None:
            return default
        if isinstance(held, tuple):
            return {held[0]: held[1]}
        return held

    def sorted_items(self, employment_id: str) -> tuple[tuple[str, ApplicationEntry], ...]:
        """The employment's (assignment id, entry) pairs by assignment id; none if none."""
        held = self._held.get(employment_id)
        if held is None:
            return ()
        if isinstance(held, tuple):
            return (held,)
        return tuple(sorted(held.items(), key=_first))

    def __contains__(self, employment_id: object) -> bool:
        return employment_id in self._held

    def __getitem__(self, employment_id: str) -> Mapping[str, ApplicationEntry]:
        found = self.get(employment_id)
        if found is None:
            raise KeyError(employment_id)
        return found


def _keep_live_revisions(revisions: dict[int, AccessApplication]) -> None:
    """Forget the application revisions of one assignment that can no longer matter.

    Only the newest revision can still change (a command naming an older one is refused as
    stale), so what can be in effect, now or once the newest is withdrawn, is the newest
    revision and the latest approved one before it. Older revisions stay in the store
    (``lockgate applications show --revision``); held here, they would grow with the
    history of every assignment. No command removes a revision, so removing one here (the
    :meth:`FactSet.remove` of a held revision) falls back on the revisions still held."""
    if len(revisions) < 2:
        return
    newest = max(revisions)
    approved_before = [
        r for r, a in revisions.items() if r < newest and a.status == ApplicationStatus.APPROVED
    ]
    keep = {newest, max(approved_before)} if approved_before else {newest}
    for r in [r for r in revisions if r not in keep]:
        del revisions[r]


class FactSet:
    """Every fact the engine knows, with the indexes derivation and touch-tracking need.

    Of an assignment's access application revisions it holds the newest and the latest
    approved one before it (:func:`_keep_live_revisions`); the store holds every one."""

    def __init__(self) -> None:
        self.organisations: dict[str, Organisation] = {}
        self.agreements: dict[str, KeyGrantAgreement] = {}
        self.agreements_by_org: defaultdict[str, set[str]] = defaultdict(set)
        self.persons: dict[str, Person] = {}
        self.employments: dict[str, Employment] = {}
        self.employments_by_person = Links()
        self.employments_by_org: defaultdict[str, set[str]] = defaultdict(set)
        self.employment_by_card: dict[str, str] = {}
        self.competences: defaultdict[str, dict[str, Competence]] = defaultdict(dict)
        self.spaces: dict[str, Space] = {}
        self.space_digests: dict[str, str] = {}
        self.spaces_by_cylinder: defaultdict[str, set[str]] = defaultdict(set)
        self.spaces_by_controller: defaultdict[str, set[str]] = defaultdict(set)
        self.assignments: dict[str, Assignment] = {}
        self.applications: defaultdict[str, dict[int, AccessApplication]] = defaultdict(dict)
        self.latest_approved: dict[str, AccessApplication] = {}
        # employment -> assignment -> its entry in that assignment's latest approved revision
        self.entries_by_employment = EntryIndex()
        self.employments_by_space: defaultdict[str, set[str]] = defaultdict(set)
        self.credentials: dict[str, Credential] = {}
        self.credentials_by_employment = Links()
        self.visitor_cards: dict[str, VisitorCard] = {}
        self.visitors_by_space: defaultdict[str, set[str]] = defaultdict(set)
        self.visitors_by_sponsor: defaultdict[str, set[str]] = defaultdict(set)
        self.key_orders: dict[str, KeyOrder] = {}
        self.manifests: dict[tuple[str, ...], DeliveryManifest] = {}
        self.receipts: dict[tuple[str, ...], Receipt] = {}
        self._agreement_windows: dict[str, Window | None] = {}
        self._agreement_windows_for: tuple[datetime, object] | None = None

    # ------------------------------------------------------------------ derived caches

    def cached_agreement_window(
        self,
        org: str,
        at: datetime,
        cfg: object,
        compute: Callable[[FactSet, str, datetime, Any], Window | None],
    ) -> Window | None:
        """``compute(self, org, at, cfg)``, remembered until the agreements change or it is
        asked for another instant or configuration (every employee of an organisation
        needs the same one)."""
        if self._agreement_windows_for is None or (
            self._agreement_windows_for[0] != at or self._agreement_windows_for[1] is not cfg
        ):
            self._agreement_windows = {}
            self._agreement_windows_for = (at, cfg)
        if org in self._agreement_windows:
            return self._agreement_windows[org]
        window = self._agreement_windows[org] = compute(self, org, at, cfg)
        return window

    # ------------------------------------------------------------------ touch helpers

    def credentials_of_employments(self, employment_ids: Iterable[str]) -> set[str]:
        return self.credentials_by_employment.gather(employment_ids)

    def _credentials_of_org(self, org: str) -> set[str]:
        return self.credentials_of_employments(self.employments_by_org.get(org, set()))

    def _credentials_of_person(self, person_id: str) -> set[str]:
        return self.credentials_of_employments(self.employments_by_person.get(person_id))

    def _credentials_of_space(self, space_id: str) -> set[str]:
        out = self.credentials_of_employments(self.employments_by_space.get(space_id, set()))
        return out | self.visitors_by_space.get(space_id, set())

    # ------------------------------------------------------------------ apply / remove

    def apply(self, fact: Fact) -> set[str]:
        """Add or replace ``fact``; return the credentials whose derivation it may change."""
        compact(fact)
        match fact:
            case Organisation():
                self.organisations[fact.org_number] = fact
                return set()
            case KeyGrantAgreement():
                self._agreement_windows_for = None
                touched = self._drop_agreement(fact.id)
                self.agreements[fact.id] = fact
                self.agreements_by_org[fact.org_number].add(fact.id)
                return touched | self._credentials_of_org(fact.org_number)
            case Person():
                self.persons[fact.id] = fact
                return set()
            case Employment():
                _share_id(fact, "person_id", self.persons)
                touched = self._drop_employment(fact.id)
                self.employments[fact.id] = fact
                self.employments_by_person.add(fact.person_id, fact.id)
                self.employments_by_org[fact.org_number].add(fact.id)
                self.employment_by_card[fact.id06.card_number] = fact.id
                return touched | self._employment_dependants(fact.id)
            case Competence():
                _share_id(fact, "person_id", self.persons)
                self.competences[fact.person_id][fact.code] = fact
                return self._credentials_of_person(fact.person_id)
            case Space():
                touched = self._drop_space(fact.id)
                self._index_space(fact)
                return touched | self._credentials_of_space(fact.id)
            case Assignment():
                self.assignments[fact.id] = fact
                return self._credentials_of_assignment(fact.id)
            case AccessApplication():
                for entry in fact.entries:
                    _share_id(entry, "employment_id", self.employments)
                    _share_space_ids(entry, self.spaces)
                before = self._credentials_of_assignment(fact.assignment_id)
                revisions = self.applications[fact.assignment_id]
                revisions[fact.revision] = fact
                _keep_live_revisions(revisions)
                self._reindex_assignment(fact.assignment_id)
                return before | self._credentials_of_assignment(fact.assignment_id)
            case Credential():
                _share_id(fact, "employment_id", self.employments)
                touched = self._drop_credential(fact.number)
                self.credentials[fact.number] = fact
                if fact.employment_id is not None:
                    self.credentials_by_employment.add(fact.employment_id, fact.number)
                return touched | {fact.number}
            case VisitorCard():
                self._drop_visitor(fact.number)
                self.visitor_cards[fact.number] = fact
                for s in fact.space_ids:
                    self.visitors_by_space[s].add(fact.number)
                self.visitors_by_sponsor[fact.sponsor_employment_id].add(fact.number)
                return {fact.number}
            case KeyOrder():
                self.key_orders[fact.id] = fact
                return set()
            case DeliveryManifest():
                self.manifests[fact_key(fact)] = fact
                return set()
            case Receipt():
                self.receipts[fact_key(fact)] = fact
                return set()
        raise TypeError(f"not a fact: {type(fact).__name__}")

    def remove(self, kind: type[Fact], key: tuple[str, ...]) -> set[str]:
        """Remove the fact of ``kind`` with ``key`` (see :func:`fact_key`); return touched."""
        if kind is Organisation:
            self.organisations.pop(key[0], None)
            return set()
        if kind is KeyGrantAgreement:
            return self._drop_agreement(key[0])
        if kind is Person:
            self.persons.pop(key[0], None)
            return set()
        if kind is Employment:
            return self._drop_employment(key[0]) | self._employment_dependants(key[0])
        if kind is Competence:
            self.competences.get(key[0], {}).pop(key[1], None)
            return self._credentials_of_person(key[0])
        if kind is Space:
            return self._drop_space(key[0])
        if kind is Assignment:
            self.assignments.pop(key[0], None)
            return self._credentials_of_assignment(key[0])
        if kind is AccessApplication:
            before = self._credentials_of_assignment(key[0])
            self.applications.get(key[0], {}).pop(int(key[1]), None)
            self._reindex_assignment(key[0])
            return before | self._credentials_of_assignment(key[0])
        if kind is Credential:
            return self._drop_credential(key[0]) | {key[0]}
        if kind is VisitorCard:
            self._drop_visitor(key[0])
            return {key[0]}
        if kind is KeyOrder:
            self.key_orders.pop(key[0], None)
            return set()
        if kind is DeliveryManifest:
            self.manifests.pop(key, None)
            return set()
        if kind is Receipt:
            self.receipts.pop(key, None)
            return set()
        raise TypeError(f"not a fact type: {kind.__name__}")

    # ------------------------------------------------------------------ internals

    def _employment_dependants(self, employment_id: str) -> set[str]:
        out = set(self.credentials_by_employment.get(employment_id))
        out.update(self.visitors_by_sponsor.get(employment_id, ()))
        return out

    def _drop_agreement(self, agreement_id: str) -> set[str]:
        self._agreement_windows_for = None
        old = self.agreements.pop(agreement_id, None)
        if old is None:
            return set()
        self.agreements_by_org[old.org_number].discard(agreement_id)
        return self._credentials_of_org(old.org_number)

    def _drop_employment(self, employment_id: str) -> set[str]:
        old = self.employments.pop(employment_id, None)
        if old is None:
            return set()
        self.employments_by_person.discard(old.person_id, employment_id)
        self.employments_by_org[old.org_number].discard(employment_id)
        if self.employment_by_card.get(old.id06.card_number) == employment_id:
            del self.employment_by_card[old.id06.card_number]
        return set()

    def _index_space(self, space: Space) -> None:
        self.spaces[space.id] = space
        self.space_digests[space.id] = space_digest(space)
        for c in space.cylinders:
            self.spaces_by_cylinder[c].add(space.id)
        for d in space.doors:
            self.spaces_by_controller[d.controller_id].add(space.id)

    def _drop_space(self, space_id: str) -> set[str]:
        old = self.spaces.pop(space_id, None)
        self.space_digests.pop(space_id, None)
        if old is None:
            return set()
        for c in old.cylinders:
            self.spaces_by_cylinder[c].discard(space_id)
        for d in old.doors:
            self.spaces_by_controller[d.controller_id].discard(space_id)
        return self._credentials_of_space(space_id)

    def _drop_credential(self, number: str) -> set[str]:
        old = self.credentials.pop(number, None)
        if old is not None and old.employment_id is not None:
            self.credentials_by_employment.discard(old.employment_id, number)
        return set()

    def _drop_visitor(self, number: str) -> None:
        old = self.visitor_cards.pop(number, None)
        if old is None:
            return
        for s in old.space_ids:
            self.visitors_by_space[s].discard(number)
        self.visitors_by_sponsor[old.sponsor_employment_id].discard(number)

    def _credentials_of_assignment(self, assignment_id: str) -> set[str]:
        app = self.latest_approved.get(assignment_id)
        if app is None:
            return set()
        return self.credentials_of_employments(e.employment_id for e in app.entries)

    def _reindex_assignment(self, assignment_id: str) -> None:
        entries, by_space = self.entries_by_employment, self.employments_by_space
        old = self.latest_approved.pop(assignment_id, None)
        if old is not None:
            for e in old.entries:
                employment_id = e.employment_id
                entries.pop(employment_id, assignment_id)
                if employment_id in entries:
                    self._unindex_space_uses(e.space_ids, employment_id)
                else:  # named by no other assignment: it uses none of these spaces now
                    for s in e.space_ids:
                        by_space[s].discard(employment_id)
        approved = [
            a
            for a in self.applications.get(assignment_id, {}).values()
            if a.status == ApplicationStatus.APPROVED
        ]
        if not approved:
            return
        new = max(approved, key=lambda a: a.revision)
        self.latest_approved[assignment_id] = new
        for e in new.entries:
            employment_id = e.employment_id
            entries.put(employment_id, assignment_id, e)
            for s in e.space_ids:
                by_space[s].add(employment_id)

    def _unindex_space_uses(self, space_ids: Iterable[str], employment_id: str) -> None:
        # The employment may still use a space through another assignment.
        remaining = self.entries_by_employment.get(employment_id)
        still: set[str] = set()
        if remaining:
            for entry in remaining.values():
                still.update(entry.space_ids)
        for space_id in space_ids:
            if space_id not in still:
                self.employments_by_space[space_id].discard(employment_id)

    # ------------------------------------------------------------------ bulk

    @classmethod
    def of(cls, facts: Iterable[Fact]) -> FactSet:
        """Build a fact set from facts in any order."""
        fs = cls()
        for f in facts:
            fs.apply(f)
        return fs

    def all_facts(self) -> list[Fact]:
        """Every fact held, in an order that :meth:`of` accepts (any order works)."""
        out: list[Fact] = []
        out.extend(self.organisations.values())
        out.extend(self.agreements.values())
        out.extend(self.persons.values())
        out.extend(self.employments.values())
        for by_code in self.competences.values():
            out.extend(by_code.values())
        out.extend(self.spaces.values())
        out.extend(self.assignments.values())
        for by_rev in self.applications.values():
            out.extend(by_rev.values())
        out.extend(self.credentials.values())
        out.extend(self.visitor_cards.values())
        out.extend(self.key_orders.values())
        out.extend(self.manifests.values())
        out.extend(self.receipts.values())
        return out

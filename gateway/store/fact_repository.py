"""Repository of domain facts: store, replace, delete and query every fact type.

Every function takes the :class:`~sqlalchemy.orm.Session` of the caller's transaction, so that
facts, inbox records and outbox messages of one command commit together. A fact is identified
within its type by :func:`gateway.domain.fact_key`; storing a fact replaces the stored fact with
the same key, collections included. Reading returns exactly the model that was stored: aware
UTC datetimes, dates, tuples in their order, enums.

Referential rules between aggregates (the employment of a credential exists, one employment per
person and organisation, ...) are the command layer's job: facts may arrive in any order.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from functools import cached_property
from operator import itemgetter
from types import UnionType
from typing import Annotated, Any, Final, TypeVar, Union, cast, get_args, get_origin

from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    ColumnElement,
    Dialect,
    RowMapping,
    Table,
    and_,
    bindparam,
    event,
    func,
    select,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session

from gateway.domain import (
    FACT_TYPES,
    AccessApplication,
    ApplicationEntry,
    ApplicationStatus,
    Assignment,
    Competence,
    Credential,
    DeliveryManifest,
    Employment,
    Fact,
    Id06Card,
    Id06Status,
    KeyGrantAgreement,
    KeyOrder,
    Organisation,
    Person,
    Receipt,
    Space,
    VisitorCard,
    WeeklySchedule,
    fact_key,
)
from gateway.store import tables as t
from gateway.store.bulk import BulkInsert

__all__ = [
    "all_of",
    "count",
    "delete",
    "delete_deferred",
    "get",
    "iter_all",
    "load_all",
    "put",
    "put_many",
    "tables_of",
    "write_deferred",
]

F = TypeVar("F", bound=Fact)
M = TypeVar("M", bound=BaseModel)

Row = dict[str, Any]
RowLike = Mapping[Any, Any]
"""A stored row by column name: a :class:`~sqlalchemy.RowMapping`, or a dict."""
ChildRows = Mapping[str, Sequence[RowLike]]


# --------------------------------------------------------------------------- mapping


@dataclass(frozen=True, slots=True)
class _Child:
    """A child table of an aggregate: ``root_columns`` hold the root's key (in key order),
    ``order`` sorts the rows of one aggregate back into the model's tuple order."""

    table: Table
    root_columns: tuple[str, ...]
    order: tuple[str, ...]


@dataclass(frozen=True)
class _Spec:
    """How one fact type maps to its root table and child tables."""

    kind: type[Fact]
    table: Table
    key_fields: tuple[str, ...]
    dump: Callable[[Any], tuple[Row, dict[str, list[Row]]]]
    load: Callable[[RowLike, ChildRows], Fact]
    children: tuple[_Child, ...] = ()
    key_types: tuple[type, ...] = ()

    @cached_property
    def key_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.table.primary_key.columns)

    def key_of_row(self, row: RowMapping) -> tuple[Any, ...]:
        return tuple(row[c] for c in self.key_columns)

    def key_values(self, key: Sequence[str]) -> tuple[Any, ...]:
        """Turn a :func:`fact_key` (strings) into column values, validating each part."""
        if len(key) != len(self.key_fields):
            fields = ", ".join(self.key_fields)
            raise ValueError(
                f"{self.kind.__name__} is identified by {len(self.key_fields)} key part(s) "
                f"({fields}), got {len(key)}"
            )
        values: list[Any] = []
        for name, part, typ in zip(self.key_fields, key, self.key_types, strict=True):
            if not isinstance(part, str):
                raise TypeError(f"{name}: key parts are strings, got {type(part).__name__}")
            values.append(_parse_key_part(name, part, typ))
        return tuple(values)

    def key_filter(self, values: Sequence[Any]) -> ColumnElement[bool]:
        return and_(*(self.table.c[c] == v for c, v in zip(self.key_columns, values, strict=True)))


def _parse_key_part(name: str, part: str, typ: type) -> Any:
    if typ is str:
        return part
    if typ is int:
        if not part.isascii() or not part.isdigit() or not 1 <= int(part) <= _BIGINT:
            raise ValueError(f"{name}: must be a whole number from 1 to 2**63-1, got {part!r}")
        return int(part)
    if typ is datetime:
        try:
            value = datetime.fromisoformat(part)
        except ValueError:
            raise ValueError(f"{name}: not an ISO 8601 date and time: {part!r}") from None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name}: must carry a time zone, got {part!r}")
        return value
    raise AssertionError(f"unsupported key type {typ}")


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _dump_flat(fact: Fact) -> tuple[Row, dict[str, list[Row]]]:
    return {k: _plain(v) for k, v in fact.model_dump().items()}, {}


def _flat(kind: type[Fact]) -> Callable[[RowLike, ChildRows], Fact]:
    def load(row: RowLike, _children: ChildRows) -> Fact:
        return kind.model_validate(dict(row))

    return load


# Employment ------------------------------------------------------------------


def _dump_employment(fact: Employment) -> tuple[Row, dict[str, list[Row]]]:
    return {
        "id": fact.id,
        "person_id": fact.person_id,
        "org_number": fact.org_number,
        "id06_card_number": fact.id06.card_number,
        "id06_valid_until": fact.id06.valid_until,
        "id06_status": fact.id06.status.value,
    }, {}


def _load_employment(row: RowLike, _children: ChildRows) -> Fact:
    return Employment.model_validate(
        {
            "id": row["id"],
            "person_id": row["person_id"],
            "org_number": row["org_number"],
            "id06": {
                "card_number": row["id06_card_number"],
                "valid_until": row["id06_valid_until"],
                "status": row["id06_status"],
            },
        }
    )


# Space -------------------------------------------------------------------------


def _dump_space(fact: Space) -> tuple[Row, dict[str, list[Row]]]:
    return {"id": fact.id, "name": fact.name, "revalidation_days": fact.revalidation_days}, {
        t.space_cylinder.name: [
            {"space_id": fact.id, "cylinder": c, "position": i}
            for i, c in enumerate(fact.cylinders)
        ],
        t.space_door.name: [
            {"space_id": fact.id, "controller_id": d.controller_id, "door": d.door, "position": i}
            for i, d in enumerate(fact.doors)
        ],
        t.space_competence.name: [
            {"space_id": fact.id, "code": c, "position": i}
            for i, c in enumerate(fact.required_competences)
        ],
    }


def _load_space(row: RowLike, children: ChildRows) -> Fact:
    return Space.model_validate(
        {
            "id": row["id"],
            "name": row["name"],
            "revalidation_days": row["revalidation_days"],
            "cylinders": tuple(r["cylinder"] for r in children[t.space_cylinder.name]),
            "doors": tuple(
                {"controller_id": r["controller_id"], "door": r["door"]}
                for r in children[t.space_door.name]
            ),
            "required_competences": tuple(r["code"] for r in children[t.space_competence.name]),
        }
    )


# AccessApplication ------------------------------------------------------------


def _dump_application(fact: AccessApplication) -> tuple[Row, dict[str, list[Row]]]:
    key = {"assignment_id": fact.assignment_id, "revision": fact.revision}
    entries: list[Row] = []
    spaces: list[Row] = []
    for i, entry in enumerate(fact.entries):
        entries.append(
            key
            | {
                "employment_id": entry.employment_id,
                "position": i,
                "valid_from": entry.valid_from,
                "valid_until": entry.valid_until,
                "schedule": (
                    entry.schedule.model_dump(mode="json") if entry.schedule is not None else None
                ),
            }
        )
        spaces.extend(
            key | {"employment_id": entry.employment_id, "space_id": s, "position": j}
            for j, s in enumerate(entry.space_ids)
        )
    row = key | {
        "status": fact.status.value,
        "expedited": fact.expedited,
        "submitted_at": fact.submitted_at,
        "decided_at": fact.decided_at,
    }
    return row, {t.application_entry.name: entries, t.application_entry_space.name: spaces}


def _load_application(row: RowLike, children: ChildRows) -> Fact:
    spaces: dict[str, list[str]] = defaultdict(list)
    for r in children[t.application_entry_space.name]:
        spaces[r["employment_id"]].append(r["space_id"])
    return AccessApplication.model_validate(
        {
            "assignment_id": row["assignment_id"],
            "revision": row["revision"],
            "status": row["status"],
            "expedited": row["expedited"],
            "submitted_at": row["submitted_at"],
            "decided_at": row["decided_at"],
            "entries": tuple(
                {
                    "employment_id": e["employment_id"],
                    "space_ids": tuple(spaces[e["employment_id"]]),
                    "valid_from": e["valid_from"],
                    "valid_until": e["valid_until"],
                    "schedule": e["schedule"],
                }
                for e in children[t.application_entry.name]
            ),
        }
    )


# DeliveryManifest ---------------------------------------------------------------


def _dump_manifest(fact: DeliveryManifest) -> tuple[Row, dict[str, list[Row]]]:
    key = {"order_id": fact.order_id, "delivered_at": fact.delivered_at}
    return key, {
        t.manifest_key.name: [
            key | {"key_serial": s, "position": i} for i, s in enumerate(fact.key_serials)
        ]
    }


def _load_manifest(row: RowLike, children: ChildRows) -> Fact:
    return DeliveryManifest.model_validate(
        {
            "order_id": row["order_id"],
            "delivered_at": row["delivered_at"],
            "key_serials": tuple(r["key_serial"] for r in children[t.manifest_key.name]),
        }
    )


# VisitorCard -------------------------------------------------------------------


def _dump_visitor_card(fact: VisitorCard) -> tuple[Row, dict[str, list[Row]]]:
    row = {k: _plain(v) for k, v in fact.model_dump(exclude={"space_ids"}).items()}
    return row, {
        t.visitor_card_space.name: [
            {"number": fact.number, "space_id": s, "position": i}
            for i, s in enumerate(fact.space_ids)
        ]
    }


def _load_visitor_card(row: RowLike, children: ChildRows) -> Fact:
    data = dict(row)
    data["space_ids"] = tuple(r["space_id"] for r in children[t.visitor_card_space.name])
    return VisitorCard.model_validate(data)


# Trusted loading ---------------------------------------------------------------------
#
# Rows the store wrote were validated on the way in (every write goes through a model), so
# the bulk load at start-up builds the models from them without validating each row again:
# the same field values (enums converted, nested models built), the same set of fields given
# as validation from the row's dict would record. tests/gateway/store checks that both agree.

_setattr = object.__setattr__


def _build(kind: type[M], data: dict[str, Any], fields_set: set[str]) -> M:
    """A model of ``kind`` holding ``data`` (in field order), as validated before."""
    model = kind.__new__(kind)
    _setattr(model, "__dict__", data)
    _setattr(model, "__pydantic_fields_set__", fields_set)
    _setattr(model, "__pydantic_extra__", None)
    _setattr(model, "__pydantic_private__", None)
    return model


def _members(enum: type[Enum], optional: bool) -> Callable[[Any], Any]:
    """The member of ``enum`` with a stored value (None for None when ``optional``)."""
    members: dict[Any, Any] = {m.value: m for m in enum}
    if optional:
        members[None] = None
    return members.__getitem__


def _plain_type(annotation: Any) -> tuple[Any, bool]:
    """(the type under ``Annotated`` and ``| None``, whether None is allowed)."""
    optional = False
    if get_origin(annotation) in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(args) < len(get_args(annotation))
        if len(args) != 1:
            return None, optional
        annotation = args[0]
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation, optional


_AS_STORED: Final = (str, int, bool, date, datetime)
"""Field types whose stored values are the model's values (dates and aware UTC instants
come back from :class:`~gateway.store.tables.UtcTimestamp` as validated)."""


_ID06_STATUS: Final = _members(Id06Status, optional=False)
_APPLICATION_STATUS: Final = _members(ApplicationStatus, optional=False)
_EMPLOYMENT_SET: Final = {"id", "person_id", "org_number", "id06"}
_ID06_SET: Final = {"card_number", "valid_until", "status"}


_APPLICATION_SET: Final = {
    "assignment_id",
    "revision",
    "status",
    "expedited",
    "submitted_at",
    "decided_at",
    "entries",
}
_ENTRY_SET: Final = {"employment_id", "space_ids", "valid_from", "valid_until", "schedule"}


# Bulk loading ------------------------------------------------------------------------
#
# The bulk load reads each table's rows as the driver hands them over (no mapping per row,
# no conversion of columns that need none) and converts the few columns the database
# returns in another form (SQLite: dates and instants as text, booleans as whole numbers;
# PostgreSQL: instants in the session's time zone) with SQLAlchemy's own result processor
# of the column, once per distinct value: a site repeats a few dates and instants.

RawRow = Sequence[Any]
Convert = Callable[[Any], Any]


def _memoized(convert: Convert) -> Convert:
    """``convert`` computed once per distinct value (the values are immutable)."""
    seen: dict[Any, Any] = {}

    def once(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            result = seen[value] = convert(value)
            return result

    return once


class _Columns:
    """How to read one table's raw rows: each column's position, and how to convert its
    value (None: the driver's value is the model's value)."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        self.position: dict[str, int] = {}
        self.convert: dict[str, Convert | None] = {}
        for i, column in enumerate(table.columns):
            impl = column.type.dialect_impl(dialect)
            processor = impl.result_processor(dialect, None)
            self.position[column.name] = i
            if processor is None:
                self.convert[column.name] = None
            elif isinstance(impl, JSON):  # a dict (PostgreSQL) cannot be a memo key
                self.convert[column.name] = processor
            else:
                self.convert[column.name] = _memoized(processor)

    def reader(self, name: str) -> tuple[int, Convert | None]:
        return self.position[name], self.convert[name]

    def mapping(self, row: RawRow) -> dict[str, Any]:
        """The row as a mapping of converted values (what the validating loaders take)."""
        return {
            name: row[i] if (c := self.convert[name]) is None else c(row[i])
            for name, i in self.position.items()
        }


BulkLoader = Callable[[RawRow, Mapping[str, Sequence[RawRow]]], Fact]


def _bulk_flat(kind: type[Fact], cols: _Columns) -> BulkLoader | None:
    """A loader building ``kind`` from its raw row without validation, or None when one of
    its fields is not a plain stored value (then it is validated)."""
    plan: list[tuple[str, int, Convert | None]] = []
    for name, info in kind.model_fields.items():
        typ, optional = _plain_type(info.annotation)
        i, read = cols.reader(name)
        if isinstance(typ, type) and issubclass(typ, Enum):
            member = _members(typ, optional)
            plan.append((name, i, member if read is None else _then(read, member)))
        elif typ in _AS_STORED:
            plan.append((name, i, read))
        else:
            return None
    fields_set = {name for name, _, _ in plan}

    def load(row: RawRow, _children: Mapping[str, Sequence[RawRow]]) -> Fact:
        return _build(kind, {n: row[i] if c is None else c(row[i]) for n, i, c in plan}, fields_set)

    return load


def _then(first: Convert, second: Convert) -> Convert:
    return lambda value: second(first(value))


def _value(position: int, convert: Convert | None) -> Convert:
    """Reads one column of a raw row, converted."""
    if convert is None:
        return itemgetter(position)
    return lambda row: convert(row[position])


def _bulk_employment(cols: _Columns) -> BulkLoader:
    id_, person_id, org_number, card_number, valid_until, status = (
        _value(*cols.reader(name))
        for name in (
            "id",
            "person_id",
            "org_number",
            "id06_card_number",
            "id06_valid_until",
            "id06_status",
        )
    )

    def load(row: RawRow, _children: Mapping[str, Sequence[RawRow]]) -> Fact:
        card = _build(
            Id06Card,
            {
                "card_number": card_number(row),
                "valid_until": valid_until(row),
                "status": _ID06_STATUS(status(row)),
            },
            _ID06_SET,
        )
        return _build(
            Employment,
            {
                "id": id_(row),
                "person_id": person_id(row),
                "org_number": org_number(row),
                "id06": card,
            },
            _EMPLOYMENT_SET,
        )

    return load


_MISSING: Final = object()


def _bulk_application(cols: _Columns, entry: _Columns, space: _Columns) -> BulkLoader:
    assignment_id, revision, status, expedited, submitted_at, decided_at = (
        _value(*cols.reader(name))
        for name in (
            "assignment_id",
            "revision",
            "status",
            "expedited",
            "submitted_at",
            "decided_at",
        )
    )
    employment_id, valid_from, valid_until = (
        _value(*entry.reader(name)) for name in ("employment_id", "valid_from", "valid_until")
    )
    schedule_at, schedule_convert = entry.reader("schedule")
    space_employment = space.position["employment_id"]
    space_id = space.position["space_id"]
    entries_table, spaces_table = t.application_entry.name, t.application_entry_space.name
    schedules: dict[Any, WeeklySchedule | None] = {}
    """Schedules met so far, by their stored JSON text (or the repr of the stored JSON
    value, which tells 1 from 1.0 and True): a site repeats a few, and each is validated
    once and then shared."""

    def schedule_of(row: RawRow) -> WeeklySchedule | None:
        stored = row[schedule_at]
        if stored is None:
            return None
        key = stored if isinstance(stored, str) else repr(stored)
        known = schedules.get(key, _MISSING)
        if known is _MISSING:
            value = stored if schedule_convert is None else schedule_convert(stored)
            known = schedules[key] = None if value is None else WeeklySchedule.model_validate(value)
        return cast(WeeklySchedule | None, known)

    def load(row: RawRow, children: Mapping[str, Sequence[RawRow]]) -> Fact:
        spaces: dict[str, list[str]] = defaultdict(list)
        for r in children[spaces_table]:
            spaces[r[space_employment]].append(r[space_id])
        entries = tuple(
            _build(
                ApplicationEntry,
                {
                    "employment_id": (employment := employment_id(e)),
                    "space_ids": tuple(spaces[employment]),
                    "valid_from": valid_from(e),
                    "valid_until": valid_until(e),
                    "schedule": schedule_of(e),
                },
                _ENTRY_SET,
            )
            for e in children[entries_table]
        )
        return _build(
            AccessApplication,
            {
                "assignment_id": assignment_id(row),
                "revision": revision(row),
                "status": _APPLICATION_STATUS(status(row)),
                "expedited": expedited(row),
                "submitted_at": submitted_at(row),
                "decided_at": decided_at(row),
                "entries": entries,
            },
            _APPLICATION_SET,
        )

    return load


def _bulk_loader(spec: _Spec, cols: dict[str, _Columns]) -> BulkLoader:
    """How the bulk load builds ``spec``'s facts from raw rows (``cols``: the columns of its
    tables, by table name): without validation where that is known to give the same model,
    else by validating the rows as :func:`get` does."""
    root = cols[spec.table.name]
    if spec.kind is Employment:
        return _bulk_employment(root)
    if spec.kind is AccessApplication:
        return _bulk_application(
            root, cols[t.application_entry.name], cols[t.application_entry_space.name]
        )
    if not spec.children:
        trusted = _bulk_flat(spec.kind, root)
        if trusted is not None:
            return trusted

    def validated(row: RawRow, children: Mapping[str, Sequence[RawRow]]) -> Fact:
        return spec.load(
            root.mapping(row),
            {name: [cols[name].mapping(r) for r in rows] for name, rows in children.items()},
        )

    return validated


_BULK_SQL: dict[tuple[str, str, tuple[str, ...]], str] = {}


def _bulk_sql(table: Table, order: tuple[str, ...], dialect: Dialect) -> str:
    """``SELECT`` every column of ``table`` ``ORDER BY`` the columns ``order``, compiled
    once per dialect."""
    key = (dialect.name, table.name, order)
    sql = _BULK_SQL.get(key)
    if sql is None:
        query = select(table).order_by(*(table.c[c] for c in order))
        sql = _BULK_SQL[key] = str(query.compile(dialect=dialect))
    return sql


def _raw_rows(session: Session, table: Table, order: tuple[str, ...]) -> Sequence[RawRow]:
    """Every row of ``table`` in ``order``, as the driver returns them."""
    conn = session.connection()
    return conn.exec_driver_sql(_bulk_sql(table, order, conn.dialect)).all()


def _bulk_fetch(session: Session, spec: _Spec) -> list[Fact]:
    """Every stored fact of ``spec``'s type, by key: one statement per table."""
    write_deferred(session)
    dialect = session.connection().dialect
    rows = _raw_rows(session, spec.table, spec.key_columns)
    if not rows:
        return []
    cols = {spec.table.name: _Columns(spec.table, dialect)}
    grouped: dict[str, dict[Any, list[RawRow]]] = {}
    for child in spec.children:
        ct = child.table
        child_cols = cols[ct.name] = _Columns(ct, dialect)
        groups: dict[Any, list[RawRow]] = defaultdict(list)
        key_of = itemgetter(*(child_cols.position[c] for c in child.root_columns))
        for r in _raw_rows(session, ct, (*child.root_columns, *child.order)):
            groups[key_of(r)].append(r)
        grouped[ct.name] = groups
    load = _bulk_loader(spec, cols)
    if not grouped:
        return [load(row, {}) for row in rows]
    # Grouped by the root's key as itemgetter gives it: one value, or a tuple of several.
    root_key_of = itemgetter(*(cols[spec.table.name].position[c] for c in spec.key_columns))
    facts: list[Fact] = []
    for row in rows:
        key = root_key_of(row)
        facts.append(load(row, {name: g.get(key, ()) for name, g in grouped.items()}))
    return facts


# Registry ------------------------------------------------------------------------

_S = (str,)


def _flat_spec(kind: type[Fact], table: Table, key_fields: tuple[str, ...]) -> _Spec:
    return _Spec(
        kind, table, key_fields, _dump_flat, _flat(kind), key_types=(str,) * len(key_fields)
    )


_SPECS: dict[type[Fact], _Spec] = {
    s.kind: s
    for s in (
        _flat_spec(Organisation, t.organisation, ("org_number",)),
        _flat_spec(KeyGrantAgreement, t.key_grant_agreement, ("id",)),
        _flat_spec(Person, t.person, ("id",)),
        _Spec(
            Employment,
            t.employment,
            ("id",),
            _dump_employment,
            _load_employment,
            key_types=_S,
        ),
        _flat_spec(Competence, t.competence, ("person_id", "code")),
        _Spec(
            Space,
            t.space,
            ("id",),
            _dump_space,
            _load_space,
            children=(
                _Child(t.space_cylinder, ("space_id",), ("position",)),
                _Child(t.space_door, ("space_id",), ("position",)),
                _Child(t.space_competence, ("space_id",), ("position",)),
            ),
            key_types=_S,
        ),
        _flat_spec(Assignment, t.assignment, ("id",)),
        _Spec(
            AccessApplication,
            t.access_application,
            ("assignment_id", "revision"),
            _dump_application,
            _load_application,
            children=(
                _Child(t.application_entry, ("assignment_id", "revision"), ("position",)),
                _Child(
                    t.application_entry_space,
                    ("assignment_id", "revision"),
                    ("employment_id", "position"),
                ),
            ),
            key_types=(str, int),
        ),
        _flat_spec(Credential, t.credential, ("number",)),
        _flat_spec(KeyOrder, t.key_order, ("id",)),
        _Spec(
            DeliveryManifest,
            t.delivery_manifest,
            ("order_id", "delivered_at"),
            _dump_manifest,
            _load_manifest,
            children=(_Child(t.manifest_key, ("order_id", "delivered_at"), ("position",)),),
            key_types=(str, datetime),
        ),
        _flat_spec(Receipt, t.receipt, ("credential_number", "employment_id")),
        _Spec(
            VisitorCard,
            t.visitor_card,
            ("number",),
            _dump_visitor_card,
            _load_visitor_card,
            children=(_Child(t.visitor_card_space, ("number",), ("position",)),),
            key_types=_S,
        ),
    )
}
assert set(_SPECS) == set(FACT_TYPES), "every fact type needs a table mapping"


def _spec(kind: type[Fact]) -> _Spec:
    try:
        return _SPECS[kind]
    except KeyError:
        raise TypeError(f"not a fact type: {getattr(kind, '__name__', kind)!r}") from None


def tables_of(kind: type[Fact]) -> tuple[Table, ...]:
    """The tables that hold facts of ``kind``: its own table, then its child tables."""
    spec = _spec(kind)
    return (spec.table, *(child.table for child in spec.children))


def _spec_of(fact: Fact) -> _Spec:
    if not isinstance(fact, Fact):
        raise TypeError(f"not a fact: {type(fact).__name__}")
    return _spec(type(fact))


# --------------------------------------------------------------------------- writing


def put(session: Session, fact: Fact) -> None:
    """Insert ``fact`` or replace the stored fact with the same :func:`fact_key`.

    The whole aggregate is replaced: a space's cylinders, an application's entries, ...
    """
    put_many(session, (fact,))


def put_many(session: Session, facts: Iterable[Fact], *, deferred: bool = False) -> None:
    """:func:`put` for many facts of any types, with a few bulk statements per table.

    When several facts share a key, the last one wins. Every fact is checked before anything
    is written: a string with a NUL character or a whole number beyond 64 bits (which the
    domain models accept but PostgreSQL cannot store) raises ``ValueError`` naming the field.

    With ``deferred`` the checked rows are kept in the session and written together with
    those of later deferred calls (group commit: one statement per table for a whole batch of
    commands instead of one per command): before anything of this module reads facts or
    deletes them at once (:func:`delete`) in the session, when :func:`write_deferred` is
    called, and before the transaction commits. A deferred put and a later
    :func:`delete_deferred` of the same fact (or the other way round) leave the later one.
    A transaction that rolls back discards them with the session. For transactions without
    savepoints (the core's)."""
    staged: Staged = defaultdict(dict)
    for fact in facts:
        spec = _spec_of(fact)
        row, child_rows = spec.dump(fact)
        name = spec.kind.__name__
        _check_storable(name, row)
        children: dict[str, list[Row]] = {}
        for table_name, rows in child_rows.items():
            for child_row in rows:
                _check_storable(f"{name} ({table_name})", child_row)
            children[table_name] = list(rows)
        staged[spec.kind][fact_key(fact)] = (row, children)
    if deferred:
        pending = _deferred(session)
        for kind, by_key in staged.items():
            pending.setdefault(kind, {}).update(by_key)
        return
    write_deferred(session)
    _write(session, staged)


_DEFERRED: Final = "lockgate.fact_repository.deferred"

Staged = dict[type[Fact], dict[tuple[str, ...], tuple[Row, dict[str, list[Row]]] | None]]
"""Per fact type, by :func:`fact_key`: the rows to write, or None for a deletion."""


def _deferred(session: Session) -> Staged:
    pending: Staged | None = session.info.get(_DEFERRED)
    if pending is None:
        pending = session.info[_DEFERRED] = {}
    return pending


def write_deferred(session: Session, *_: Any) -> None:
    """Write the rows of deferred :func:`put_many` calls still kept in ``session``."""
    pending: Staged | None = session.info.get(_DEFERRED)
    if pending:
        session.info[_DEFERRED] = {}
        _write(session, pending)


# Every session writes what it deferred before it commits. One listener for the class: a
# listener per session would be set up anew in every transaction.
event.listen(Session, "before_commit", write_deferred)


def _write(session: Session, staged: Staged) -> None:
    """Write staged puts and deletions: per fact type the deletions first (one statement per
    table), then the puts. Only rows of one fact type reference each other (an aggregate's
    children), so the order of the types does not matter."""
    conn = session.connection()
    for kind, by_key in staged.items():
        spec = _SPECS[kind]
        puts = [entry for entry in by_key.values() if entry is not None]
        gone = [spec.key_values(key) for key, entry in by_key.items() if entry is None]
        roots = [row for row, _ in puts]
        if not spec.children:
            # A flat fact: one upsert instead of delete + insert.
            _delete_keys(session, spec, gone)
            _bulk(spec.table, spec).execute(conn, roots)
            continue
        _delete_keys(
            session, spec, gone + [spec.key_of_row(cast(RowMapping, row)) for row in roots]
        )
        if not roots:
            continue
        _bulk(spec.table).execute(conn, roots)
        for child in spec.children:
            child_batch = [r for _, children in puts for r in children.get(child.table.name, ())]
            _bulk(child.table).execute(conn, child_batch)


@functools.cache
def _bulk(table: Table, upsert: _Spec | None = None) -> BulkInsert:
    """The plain INSERT of ``table``, or the upsert of the flat fact ``upsert`` (made once)."""
    return BulkInsert(table, upsert=None if upsert is None else upsert.key_columns)


@functools.cache
def _delete_statements(spec: _Spec) -> tuple[Any, ...]:
    """The DELETE statements of an aggregate: its children first, then its root row."""
    out = []
    for child in reversed(spec.children):
        cond = and_(
            *(child.table.c[col] == bindparam(f"k_{i}") for i, col in enumerate(child.root_columns))
        )
        out.append(sql_delete(child.table).where(cond))
    cond = and_(
        *(spec.table.c[col] == bindparam(f"k_{i}") for i, col in enumerate(spec.key_columns))
    )
    out.append(sql_delete(spec.table).where(cond))
    return tuple(out)


_BIGINT = 2**63 - 1


def _check_storable(where: str, row: Row) -> None:
    for column, value in row.items():
        if isinstance(value, str):
            if "\x00" in value:
                raise ValueError(f"{where}.{column}: must not contain a NUL character")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > _BIGINT:
            raise ValueError(f"{where}.{column}: {value} does not fit in 64 bits")


def delete(session: Session, kind: type[Fact], *key: str) -> bool:
    """Delete the fact of ``kind`` with ``key`` (its :func:`fact_key`), collections included.

    Returns whether it existed.
    """
    spec = _spec(kind)
    write_deferred(session)
    return _delete_keys(session, spec, [spec.key_values(key)]) > 0


def delete_deferred(session: Session, kind: type[Fact], *key: str) -> None:
    """:func:`delete`, kept in the session with the deferred puts of :func:`put_many` and
    written with them (one statement per table for a batch; see ``deferred`` there). It
    replaces a deferred put of the same fact, and a later deferred put replaces it."""
    spec = _spec(kind)
    spec.key_values(key)  # checked now, as delete() would
    _deferred(session).setdefault(spec.kind, {})[tuple(key)] = None


def _delete_keys(session: Session, spec: _Spec, keys: Sequence[tuple[Any, ...]]) -> int:
    if not keys:
        return 0
    params = [{f"k_{i}": v for i, v in enumerate(key)} for key in keys]
    conn = session.connection()
    *children, root = _delete_statements(spec)
    for stmt in children:
        conn.execute(stmt, params)
    result = conn.execute(root, params)
    return int(getattr(result, "rowcount", 0))


# --------------------------------------------------------------------------- reading


def _fetch(
    session: Session,
    spec: _Spec,
    where: ColumnElement[bool] | None = None,
) -> list[Fact]:
    """Facts of one type matching ``where`` (on the root table): one statement per table."""
    load = spec.load
    write_deferred(session)
    root = spec.table
    query = select(root).order_by(*(root.c[c] for c in spec.key_columns))
    if where is not None:
        query = query.where(where)
    rows = session.connection().execute(query).mappings().all()
    if not rows:
        return []
    grouped: dict[str, dict[Any, list[RowLike]]] = {}
    for child in spec.children:
        ct = child.table
        child_query = select(ct)
        if where is not None:
            on = and_(
                *(
                    ct.c[cc] == root.c[rc]
                    for cc, rc in zip(child.root_columns, spec.key_columns, strict=True)
                )
            )
            child_query = child_query.join(root, on).where(where)
        child_query = child_query.order_by(*(ct.c[c] for c in (*child.root_columns, *child.order)))
        groups: dict[Any, list[RowLike]] = defaultdict(list)
        key_of = itemgetter(*child.root_columns)
        for r in session.connection().execute(child_query).mappings().all():
            groups[key_of(r)].append(r)
        grouped[ct.name] = groups
    if not grouped:
        return [load(row, {}) for row in rows]
    # Grouped by the root's key as itemgetter gives it: one value, or a tuple of several.
    root_key_of = itemgetter(*spec.key_columns)
    facts: list[Fact] = []
    for row in rows:
        key = root_key_of(row)
        facts.append(load(row, {name: g.get(key, ()) for name, g in grouped.items()}))
    return facts


def get(session: Session, kind: type[F], *key: str) -> F | None:
    """The stored fact of ``kind`` whose :func:`fact_key` is ``key``, or None."""
    spec = _spec(kind)
    found = _fetch(session, spec, spec.key_filter(spec.key_values(key)))
    return cast(F, found[0]) if found else None


def all_of(session: Session, kind: type[F], where: ColumnElement[bool] | None = None) -> list[F]:
    """Every stored fact of ``kind`` (those matching ``where``, a condition on the columns of
    its table in :func:`tables_of`), ordered by key (in the database's collation)."""
    return cast(list[F], _fetch(session, _spec(kind), where))


def load_all(session: Session) -> list[Fact]:
    """Every stored fact, type by type in the order of :data:`gateway.domain.FACT_TYPES`.

    For rebuilding the rules engine at start-up: one statement per table, whatever the
    number of facts. The rows were validated when they were written: the models are built
    from them without validating again (the same models :func:`all_of` returns).
    """
    return list(iter_all(session))


def iter_all(session: Session) -> Iterator[Fact]:
    """The facts of :func:`load_all`, type by type, holding one type's list at a time: a
    consumer that keeps them compacted (the rules engine) never has the whole site twice."""
    for kind in FACT_TYPES:
        yield from _bulk_fetch(session, _SPECS[kind])


def count(session: Session, kind: type[Fact]) -> int:
    """Number of stored facts of ``kind``."""
    spec = _spec(kind)
    write_deferred(session)
    return int(
        session.connection().execute(select(func.count()).select_from(spec.table)).scalar_one()
    )

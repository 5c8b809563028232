"""The relational schema of the store: one table per fact type, child tables for collections,
and the outbox, inbox and derived-state tables.

This module is the single source of truth for the schema. Migrations in ``migrations/versions``
are written by hand and a test checks that ``upgrade head`` produces exactly this metadata on
SQLite and PostgreSQL. Constraint names come from :data:`NAMING_CONVENTION`, so a migration
can name every constraint it creates or drops on either database.

Foreign keys exist only inside an aggregate (the entries of an application, the cylinders of a
space, ...), where the parent is always written first. References between aggregates (an
employment's organisation, a credential's employment) are checked by the command layer, because
facts arrive from central systems in any order.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.types import TypeEngine

from gateway.domain import (
    ApplicationStatus,
    CredentialKind,
    CredentialState,
    Id06Status,
    KeyOrderStatus,
    VisitorReason,
)

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint and index names, identical on every database."""

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class _SqliteNaiveUtc(SQLITE_DATETIME):
    """SQLite's ``DATETIME`` with the same stored text (``YYYY-MM-DD HH:MM:SS.ffffff``),
    written by :meth:`datetime.isoformat` in C instead of a ``%`` format of seven fields: a
    batch of writes binds several instants per row."""

    def bind_processor(self, dialect: Dialect) -> Any:
        fallback = super().bind_processor(dialect)

        def process(value: Any) -> Any:
            if type(value) is datetime and value.tzinfo is None:
                return value.isoformat(" ", "microseconds")
            return fallback(value) if fallback is not None else value

        return process


class UtcTimestamp(TypeDecorator[datetime]):
    """A timezone-aware instant, stored in UTC and always returned aware and in UTC.

    PostgreSQL keeps ``timestamp with time zone``; SQLite has no time zone support, so the
    value is written as naive UTC and UTC is attached again when read. Naive datetimes are
    refused on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SqliteNaiveUtc())  # type: ignore[no-untyped-call]
        return dialect.type_descriptor(self.impl_instance)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is not UTC:  # most instants here are made in UTC already
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"a naive datetime cannot be stored: {value.isoformat()}")
            value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type() -> TypeEngine[Any]:
    """JSON on SQLite, JSONB on PostgreSQL; Python ``None`` is stored as SQL NULL."""
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def check_json_object(field: str, value: object) -> dict[str, Any]:
    """Check that ``value`` can go into a :func:`json_type` column on both databases.

    Allowed: dicts with string keys, lists and tuples (read back as lists), strings without
    NUL characters (PostgreSQL's JSONB cannot hold one), whole numbers, finite floats,
    booleans and None. The error names the offending path, e.g. ``body.grants[2].window``.
    """
    if not isinstance(value, dict):
        raise TypeError(f"{field}: must be a dict, got {type(value).__name__}")
    _check_json(field, value)
    return value


def _check_json(path: str, value: object) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: {value} cannot be stored as JSON")
    elif isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{path}: must not contain a NUL character")
    elif isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{path}: keys must be strings, got {k!r}")
            if "\x00" in k:
                raise ValueError(f"{path}: key {k!r} must not contain a NUL character")
            _check_json(f"{path}.{k}", v)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_json(f"{path}[{i}]", v)
    else:
        raise TypeError(f"{path}: {type(value).__name__} cannot be stored as JSON")


def _one_of(column: str, values: type[StrEnum], name: str | None = None) -> CheckConstraint:
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name or column)


# Lengths follow the validation of gateway.domain; fields the domain leaves unbounded are
# unbounded here too, so that every valid fact can be stored.
IDENT = 64
ORG_NUMBER = 11
CREDENTIAL_NUMBER = 10
ENUM = 20


# --------------------------------------------------------------------------- organisations

organisation = Table(
    "organisation",
    metadata,
    Column("org_number", String(ORG_NUMBER), primary_key=True),
    Column("name", String(200), nullable=False),
)

key_grant_agreement = Table(
    "key_grant_agreement",
    metadata,
    Column("id", String(IDENT), primary_key=True),
    Column("org_number", String(ORG_NUMBER), nullable=False, index=True),
    Column("signed_on", Date, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_until", Date),
    Column("terminated_at", UtcTimestamp),
)

# --------------------------------------------------------------------------- people

person = Table(
    "person",
    metadata,
    Column("id", String(IDENT), primary_key=True),
    Column("first_name", String(100), nullable=False),
    Column("last_name", String(100), nullable=False),
    Column("mobile", String(16)),
)

employment = Table(
    "employment",
    metadata,
    Column("id", String(IDENT), primary_key=True),
    Column("person_id", String(IDENT), nullable=False),
    Column("org_number", String(ORG_NUMBER), nullable=False),
    Column("id06_card_number", String(20), nullable=False, index=True),
    Column("id06_valid_until", Date, nullable=False),
    Column("id06_status", String(ENUM), nullable=False),
    _one_of("id06_status", Id06Status),
    Index(None, "person_id", "org_number"),
)

competence = Table(
    "competence",
    metadata,
    Column("person_id", String(IDENT), primary_key=True),
    Column("code", String(40), primary_key=True),
    Column("valid_until", Date, nullable=False),
)

# --------------------------------------------------------------------------- spaces

space = Table(
    "space",
    metadata,
    Column("id", String(IDENT), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("revalidation_days", Integer),
)

space_cylinder = Table(
    "space_cylinder",
    metadata,
    Column("space_id", String(IDENT), primary_key=True),
    Column("cylinder", String(CREDENTIAL_NUMBER), primary_key=True),
    Column("position", Integer, nullable=False),
    ForeignKeyConstraint(["space_id"], ["space.id"], ondelete="CASCADE"),
    Index(None, "cylinder"),
)

space_door = Table(
    "space_door",
    metadata,
    Column("space_id", String(IDENT), primary_key=True),
    Column("controller_id", String(IDENT), primary_key=True),
    Column("door", Integer, primary_key=True, autoincrement=False),
    Column("position", Integer, nullable=False),
    ForeignKeyConstraint(["space_id"], ["space.id"], ondelete="CASCADE"),
    Index(None, "controller_id"),
)

space_competence = Table(
    "space_competence",
    metadata,
    Column("space_id", String(IDENT), primary_key=True),
    Column("code", String, primary_key=True),
    Column("position", Integer, nullable=False),
    ForeignKeyConstraint(["space_id"], ["space.id"], ondelete="CASCADE"),
)

# --------------------------------------------------------------------------- assignments

assignment = Table(
    "assignment",
    metadata,
    Column("id", String(IDENT), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("main_contractor", String(ORG_NUMBER), nullable=False),
    Column("project_manager", String(100), nullable=False),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date, nullable=False),
)

access_application = Table(
    "access_application",
    metadata,
    Column("assignment_id", String(IDENT), primary_key=True),
    Column("revision", BigInteger, primary_key=True, autoincrement=False),
    Column("status", String(ENUM), nullable=False),
    Column("expedited", Boolean, nullable=False),
    Column("submitted_at", UtcTimestamp, nullable=False),
    Column("decided_at", UtcTimestamp),
    _one_of("status", ApplicationStatus),
    Index(None, "assignment_id", "status", "revision"),
)

application_entry = Table(
    "application_entry",
    metadata,
    Column("assignment_id", String(IDENT), primary_key=True),
    Column("revision", BigInteger, primary_key=True, autoincrement=False),
    Column("employment_id", String(IDENT), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_until", Date, nullable=False),
    Column("schedule", json_type()),
    ForeignKeyConstraint(
        ["assignment_id", "revision"],
        ["access_application.assignment_id", "access_application.revision"],
        ondelete="CASCADE",
    ),
    Index(None, "employment_id"),
)

application_entry_space = Table(
    "application_entry_space",
    metadata,
    Column("assignment_id", String(IDENT), primary_key=True),
    Column("revision", BigInteger, primary_key=True, autoincrement=False),
    Column("employment_id", String(IDENT), primary_key=True),
    Column("space_id", String(IDENT), primary_key=True),
    Column("position", Integer, nullable=False),
    ForeignKeyConstraint(
        ["assignment_id", "revision", "employment_id"],
        [
            "application_entry.assignment_id",
            "application_entry.revision",
            "application_entry.employment_id",
        ],
        ondelete="CASCADE",
    ),
    Index(None, "space_id"),
)

# --------------------------------------------------------------------------- credentials

credential = Table(
    "credential",
    metadata,
    Column("number", String(CREDENTIAL_NUMBER), primary_key=True),
    Column("kind", String(ENUM), nullable=False),
    Column("state", String(ENUM), nullable=False),
    Column("employment_id", String(IDENT), index=True),
    Column("order_id", String(IDENT), index=True),
    Column("replaced_by", String),
    Column("hr_approved_at", UtcTimestamp),
    Column("state_changed_at", UtcTimestamp),
    _one_of("kind", CredentialKind),
    _one_of("state", CredentialState),
)

key_order = Table(
    "key_order",
    metadata,
    Column("id", String(IDENT), primary_key=True),
    Column("org_number", String(ORG_NUMBER), nullable=False, index=True),
    Column("quantity", Integer, nullable=False),
    Column("delivery_address", String(300), nullable=False),
    Column("status", String(ENUM), nullable=False),
    Column("ordered_at", UtcTimestamp, nullable=False),
    _one_of("status", KeyOrderStatus),
)

delivery_manifest = Table(
    "delivery_manifest",
    metadata,
    Column("order_id", String(IDENT), primary_key=True),
    Column("delivered_at", UtcTimestamp, primary_key=True),
)

manifest_key = Table(
    "manifest_key",
    metadata,
    Column("order_id", String(IDENT), primary_key=True),
    Column("delivered_at", UtcTimestamp, primary_key=True),
    Column("key_serial", String(9), primary_key=True),
    Column("position", Integer, nullable=False),
    ForeignKeyConstraint(
        ["order_id", "delivered_at"],
        ["delivery_manifest.order_id", "delivery_manifest.delivered_at"],
        ondelete="CASCADE",
    ),
    Index(None, "key_serial"),
)

receipt = Table(
    "receipt",
    metadata,
    Column("credential_number", String, primary_key=True),
    Column("employment_id", String(IDENT), primary_key=True),
    Column("produced_at", UtcTimestamp, nullable=False),
    Column("signed_at", UtcTimestamp),
    Index(None, "employment_id"),
)

visitor_card = Table(
    "visitor_card",
    metadata,
    Column("number", String(CREDENTIAL_NUMBER), primary_key=True),
    Column("holder_name", String(200), nullable=False),
    Column("company", String(200), nullable=False),
    Column("mobile", String(16), nullable=False),
    Column("sponsor_employment_id", String(IDENT), nullable=False, index=True),
    Column("reason", String(ENUM), nullable=False),
    Column("valid_from", UtcTimestamp, nullable=False),
    Column("valid_until", UtcTimestamp, nullable=False, index=True),
    Column("issued_at", UtcTimestamp, nullable=False),
    Column("returned_at", UtcTimestamp),
    Column("erased", Boolean, nullable=False),
    _one_of("reason", VisitorReason),
)

visitor_card_space = Table(
    "visitor_card_space",
    metadata,
    Column("number", String(CREDENTIAL_NUMBER), primary_key=True),
    Column("space_id", String(IDENT), primary_key=True),
    Column("position", Integer, nullable=False),
    ForeignKeyConstraint(["number"], ["visitor_card.number"], ondelete="CASCADE"),
    Index(None, "space_id"),
)

# --------------------------------------------------------------------------- messaging

inbox = Table(
    "inbox",
    metadata,
    Column("request_id", String(200), primary_key=True),
    Column("kind", String(100), nullable=False),
    Column("response", json_type(), nullable=False),
    Column("received_at", UtcTimestamp, nullable=False, index=True),
    # SHA-256 of the validated request (gateway.store.inbox.digest); null in records written
    # before it was kept.
    Column("digest", String(64)),
)

outbox = Table(
    "outbox",
    metadata,
    # INTEGER PRIMARY KEY AUTOINCREMENT on SQLite (never reuses an id), BIGSERIAL on
    # PostgreSQL (a sequence never hands out an id twice).
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("topic", String, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("qos", SmallInteger, nullable=False),
    Column("retain", Boolean, nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("published_at", UtcTimestamp),
    CheckConstraint("qos IN (0, 1, 2)", name="qos"),
    Index(None, "published_at", "id"),
    sqlite_autoincrement=True,
)

fact_journal = Table(
    "fact_journal",
    metadata,
    # One row per fact written or deleted, in commit order (see gateway.store.journal); ids
    # are allocated like the outbox's.
    Column(
        "seq",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("kind", String(40), nullable=False),
    Column("key", json_type(), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("at", UtcTimestamp, nullable=False, index=True),
    sqlite_autoincrement=True,
)

# --------------------------------------------------------------------------- derived state

credential_state = Table(
    "credential_state",
    metadata,
    Column("number", String(CREDENTIAL_NUMBER), primary_key=True),
    Column("kind", String(ENUM), nullable=False),
    Column("revision", String(128), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("body", json_type(), nullable=False),
    Column("computed_at", UtcTimestamp, nullable=False),
)

controller_state = Table(
    "controller_state",
    metadata,
    Column("controller_id", String(IDENT), primary_key=True),
    Column("revision", String(128), nullable=False),
    Column("body", json_type(), nullable=False),
    Column("computed_at", UtcTimestamp, nullable=False),
)

cylinder_blacklist = Table(
    "cylinder_blacklist",
    metadata,
    Column("cylinder", String(CREDENTIAL_NUMBER), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("serials", json_type(), nullable=False),
    Column("revision", String(128), nullable=False),
    Column("computed_at", UtcTimestamp, nullable=False),
)

# --------------------------------------------------------------------------- sync (confirmed)
# What devices were last confirmed to hold, and the work still to do (gateway.sync).

sync_job = Table(
    "sync_job",
    metadata,
    # One pending job per device target: a key (by serial) or a controller. Written in the
    # transaction that changed the desired state, deleted once the device confirmed it.
    Column("target_kind", String(ENUM), primary_key=True),
    Column("target_id", String(IDENT), primary_key=True),
    Column("priority", SmallInteger, nullable=False),
    Column("desired_revision", String(128), nullable=False),
    Column("queued_at", UtcTimestamp, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_attempt_at", UtcTimestamp),
    Column("last_error", String),
    CheckConstraint("target_kind IN ('key', 'controller')", name="target_kind"),
    Index(None, "priority", "queued_at"),
)

device_status = Table(
    "device_status",
    metadata,
    Column("device_id", String(IDENT), primary_key=True),
    Column("role", String(ENUM), nullable=False),
    Column("online", Boolean, nullable=False),
    Column("reason", String, nullable=False),
    Column("changed_at", UtcTimestamp, nullable=False),
    Column("info", json_type(), nullable=False),
)

controller_sync = Table(
    "controller_sync",
    metadata,
    Column("controller_id", String(IDENT), primary_key=True),
    Column("revision", String(128), nullable=False),
    Column("checksum", BigInteger, nullable=False),
    Column("generation", BigInteger, nullable=False),
    Column("entries", Integer, nullable=False),
    Column("credentials", json_type(), nullable=False),
    Column("confirmed_at", UtcTimestamp, nullable=False),
    Column("event_generation", BigInteger, nullable=False),
    Column("event_sequence", BigInteger, nullable=False),
)

key_image = Table(
    "key_image",
    metadata,
    # The image a key was last confirmed to hold (written and read back, or read at a visit).
    Column("serial", String(CREDENTIAL_NUMBER), primary_key=True),
    Column("revision", String(128), nullable=False),
    Column("credential_revision", String(128)),
    Column("enabled", Boolean, nullable=False),
    Column("cylinders", json_type(), nullable=False),
    Column("lapses_at", UtcTimestamp),
    Column("blacklists", json_type(), nullable=False),
    Column("station_id", String(IDENT), nullable=False),
    Column("confirmed_at", UtcTimestamp, nullable=False),
)

site_key_visit = Table(
    "site_key_visit",
    metadata,
    Column("site", String(IDENT), primary_key=True),
    Column("serial", String(CREDENTIAL_NUMBER), primary_key=True),
    Column("last_at", UtcTimestamp, nullable=False),
)
"""Keys that visited a station of a site (served by that site's agent): the hub answers a
site's requests for key images only for these keys."""

site_report = Table(
    "site_report",
    metadata,
    # A report of a site's agent (confirmation, event, key visit, ...) the site hub applied,
    # written in the transaction that applied it: a redelivery (after a crash between the
    # commit and the acknowledgement, or a restart of the core) is recognised here.
    Column("site", String(IDENT), primary_key=True),
    Column("store", String(IDENT), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("applied_at", UtcTimestamp, nullable=False),
)
"""Reports of sites' agents the site hub applied, by (site, the store id the report was queued
under, its outbox sequence number). Rows below the store id's :data:`site_report_floor` are
forgotten (the floor tells them); retention deletes those older than its period."""

site_report_floor = Table(
    "site_report_floor",
    metadata,
    # Every report of the store id below ``below`` was applied or replaced at the agent:
    # one that comes again (a redelivery, or a row of a state file restored from a backup)
    # is a repeat. ``below`` only grows.
    Column("site", String(IDENT), primary_key=True),
    Column("store", String(IDENT), primary_key=True),
    Column("below", BigInteger, nullable=False),
    Column("raised_at", UtcTimestamp, nullable=False),
)
"""Per (site, store id): the sequence number below which every report is known to be applied
or replaced (taken from the lowest number the agent's outbox held when it sent a report queued
under that id); retention deletes those not raised within its period."""

key_audit = Table(
    "key_audit",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("carrier", String(CREDENTIAL_NUMBER), nullable=False),
    Column("source", String(ENUM), nullable=False),
    Column("cylinder", String(CREDENTIAL_NUMBER), nullable=False),
    Column("key_serial", String(CREDENTIAL_NUMBER), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("at", UtcTimestamp, nullable=False),
    Column("outcome", String(ENUM), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("blacklist_version", BigInteger, nullable=False),
    Column("received_at", UtcTimestamp, nullable=False),
    Index(None, "source", "cylinder", "key_serial", "sequence", unique=True),
    Index(None, "key_serial", "at"),
    sqlite_autoincrement=True,
)

cylinder_confirmed = Table(
    "cylinder_confirmed",
    metadata,
    # The blacklist version a cylinder reported applying (through a visiting key's audit).
    Column("cylinder", String(CREDENTIAL_NUMBER), primary_key=True),
    Column("blacklist_version", BigInteger, nullable=False),
    Column("confirmed_at", UtcTimestamp, nullable=False),
    Column("via_key", String(CREDENTIAL_NUMBER), nullable=False),
)

controller_event = Table(
    "controller_event",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("controller_id", String(IDENT), nullable=False),
    Column("generation", BigInteger, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("kind", String(ENUM), nullable=False),
    Column("credential", String(CREDENTIAL_NUMBER), nullable=False),
    Column("door", SmallInteger, nullable=False),
    Column("at", UtcTimestamp, nullable=False),
    Column("received_at", UtcTimestamp, nullable=False),
    Index(None, "controller_id", "generation", "sequence", unique=True),
    Index(None, "credential", "at"),
    sqlite_autoincrement=True,
)

# --------------------------------------------------------------------------- audit and operators
# Operators and their hashed secrets (gateway.auth), the hash-chained audit log
# (gateway.audit), lost-card charges and access reviews.

OPERATOR_ROLES = (
    "administrator",
    "issuer",
    "reception",
    "access_administrator",
    "project_manager",
    "hr",
    "auditor",
    "system",
    "maintenance",
)
"""The role names of gateway.auth.roles.ROLES (a test keeps both equal)."""

operator_account = Table(
    "operator_account",
    metadata,
    Column("name", String(IDENT), primary_key=True),
    Column("display_name", String(100), nullable=False),
    Column("role", String(ENUM), nullable=False),
    Column("title", String(100)),
    # Argon2id hash of the password and SHA-256 of the API token; at least one is set.
    Column("password_hash", String(200)),
    Column("token_hash", String(64)),
    Column("active", Boolean, nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("created_by", String, nullable=False),
    Column("changed_at", UtcTimestamp, nullable=False),
    CheckConstraint("role IN (" + ", ".join(f"'{r}'" for r in OPERATOR_ROLES) + ")", name="role"),
    CheckConstraint("password_hash IS NOT NULL OR token_hash IS NOT NULL", name="secret"),
)

console_session = Table(
    "console_session",
    metadata,
    # One signed-in console session (gateway.web.security). The key is the SHA-256 (hex) of
    # the session id the browser's cookie holds, never the id itself; instants are the core's
    # wall clock (idle and absolute expiry are judged on them).
    Column("id_hash", String(64), primary_key=True),
    Column("operator", String(IDENT), nullable=False, index=True),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("seen_at", UtcTimestamp, nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("language", String(ENUM)),
)

audit_entry = Table(
    "audit_entry",
    metadata,
    # One link of the hash chain (see gateway.audit.chain). ``data`` and ``personal`` hold
    # canonical JSON text, so that what is hashed is exactly what is stored; ``personal`` and
    # ``personal_salt`` are erasable, ``personal_digest`` stays.
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UtcTimestamp, nullable=False, index=True),
    Column("actor", String, nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String, nullable=False),
    Column("data", String, nullable=False),
    Column("personal", String),
    Column("personal_salt", String(64)),
    Column("personal_digest", String(64)),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("erased_at", UtcTimestamp),
)

audit_subject = Table(
    "audit_subject",
    metadata,
    # Index of the subjects of each entry (``credential 4000001``), for lookups; derived from
    # audit_entry.subject and checked against it by verification.
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("subject", String(200), primary_key=True),
    ForeignKeyConstraint(["seq"], ["audit_entry.seq"], ondelete="CASCADE"),
    Index(None, "subject", "seq"),
)

charge = Table(
    "charge",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("at", UtcTimestamp, nullable=False, index=True),
    Column("credential", String(CREDENTIAL_NUMBER), nullable=False, index=True),
    Column("employment_id", String(IDENT)),
    Column("amount_nok", Integer, nullable=False),
    Column("reason", String(ENUM), nullable=False),
    Column("operator", String, nullable=False),
    Column("request_id", String(200)),
    CheckConstraint("amount_nok > 0", name="amount_nok"),
    sqlite_autoincrement=True,
)

access_review = Table(
    "access_review",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("at", UtcTimestamp, nullable=False, index=True),
    Column("reviewer", String, nullable=False),
    Column("credentials", Integer, nullable=False),
    Column("removed", json_type(), nullable=False),
    Column("note", String),
    sqlite_autoincrement=True,
)


leader_lease = Table(
    "leader_lease",
    metadata,
    # One row per lease (today only "core"): the instance that leads, its fencing token
    # (incremented at every change of leader, never reused) and until when it holds the lease
    # (database time), and where its console is. See gateway.leadership and
    # gateway.store.fencing.
    Column("name", String(50), primary_key=True),
    Column("token", BigInteger, nullable=False),
    Column("holder", String(32), nullable=False),
    Column("host", String(200), nullable=False),
    Column("acquired_at", UtcTimestamp, nullable=False),
    Column("expires_at", UtcTimestamp, nullable=False),
    # The base URL of the leader's web console (web.public_url, or derived from web.address);
    # null when it has no console or no known address, and for leases taken before 0007.
    Column("console_url", String(500)),
)

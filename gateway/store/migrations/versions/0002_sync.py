"""Sync state: pending jobs, device status, what controllers and keys were confirmed to hold,
key audit trails, cylinder blacklist confirmations and controller events.

Revision ID: 0002_sync
Revises: 0001_initial
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_sync"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )


def _id_column() -> sa.Column[Any]:
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "sync_job",
        sa.Column("target_kind", sa.String(length=20), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("desired_revision", sa.String(length=128), nullable=False),
        sa.Column("queued_at", _ts(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", _ts(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.CheckConstraint(
            "target_kind IN ('key', 'controller')", name=op.f("ck_sync_job_target_kind")
        ),
        sa.PrimaryKeyConstraint("target_kind", "target_id", name=op.f("pk_sync_job")),
    )
    op.create_index(op.f("ix_sync_job_priority_queued_at"), "sync_job", ["priority", "queued_at"])
    op.create_table(
        "device_status",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("changed_at", _ts(), nullable=False),
        sa.Column("info", _json(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_status")),
    )
    op.create_table(
        "controller_sync",
        sa.Column("controller_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.String(length=128), nullable=False),
        sa.Column("checksum", sa.BigInteger(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("credentials", _json(), nullable=False),
        sa.Column("confirmed_at", _ts(), nullable=False),
        sa.Column("event_generation", sa.BigInteger(), nullable=False),
        sa.Column("event_sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("controller_id", name=op.f("pk_controller_sync")),
    )
    op.create_table(
        "key_image",
        sa.Column("serial", sa.String(length=10), nullable=False),
        sa.Column("revision", sa.String(length=128), nullable=False),
        sa.Column("credential_revision", sa.String(length=128), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("cylinders", _json(), nullable=False),
        sa.Column("lapses_at", _ts(), nullable=True),
        sa.Column("blacklists", _json(), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("confirmed_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_key_image")),
    )
    op.create_table(
        "key_audit",
        _id_column(),
        sa.Column("carrier", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("cylinder", sa.String(length=10), nullable=False),
        sa.Column("key_serial", sa.String(length=10), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("blacklist_version", sa.BigInteger(), nullable=False),
        sa.Column("received_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_audit")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_key_audit_source_cylinder_key_serial_sequence"),
        "key_audit",
        ["source", "cylinder", "key_serial", "sequence"],
        unique=True,
    )
    op.create_index(op.f("ix_key_audit_key_serial_at"), "key_audit", ["key_serial", "at"])
    op.create_table(
        "cylinder_confirmed",
        sa.Column("cylinder", sa.String(length=10), nullable=False),
        sa.Column("blacklist_version", sa.BigInteger(), nullable=False),
        sa.Column("confirmed_at", _ts(), nullable=False),
        sa.Column("via_key", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("cylinder", name=op.f("pk_cylinder_confirmed")),
    )
    op.create_table(
        "controller_event",
        _id_column(),
        sa.Column("controller_id", sa.String(length=64), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("credential", sa.String(length=10), nullable=False),
        sa.Column("door", sa.SmallInteger(), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("received_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_controller_event")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_controller_event_controller_id_generation_sequence"),
        "controller_event",
        ["controller_id", "generation", "sequence"],
        unique=True,
    )
    op.create_index(
        op.f("ix_controller_event_credential_at"), "controller_event", ["credential", "at"]
    )


def downgrade() -> None:
    for index, table in (
        ("ix_controller_event_credential_at", "controller_event"),
        ("ix_controller_event_controller_id_generation_sequence", "controller_event"),
        ("ix_key_audit_key_serial_at", "key_audit"),
        ("ix_key_audit_source_cylinder_key_serial_sequence", "key_audit"),
        ("ix_sync_job_priority_queued_at", "sync_job"),
    ):
        op.drop_index(op.f(index), table_name=table)
    for table in (
        "controller_event",
        "cylinder_confirmed",
        "key_audit",
        "key_image",
        "controller_sync",
        "device_status",
        "sync_job",
    ):
        op.drop_table(table)

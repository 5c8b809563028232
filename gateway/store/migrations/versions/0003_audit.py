"""Audit and operators: operator accounts, the hash-chained audit log and its subject index,
lost-card charges and access reviews.

Revision ID: 0003_audit
Revises: 0002_sync
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_audit"
down_revision: str | Sequence[str] | None = "0002_sync"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = (
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
        "operator_account",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("changed_at", _ts(), nullable=False),
        sa.CheckConstraint(
            "role IN (" + ", ".join(f"'{r}'" for r in ROLES) + ")",
            name=op.f("ck_operator_account_role"),
        ),
        sa.CheckConstraint(
            "password_hash IS NOT NULL OR token_hash IS NOT NULL",
            name=op.f("ck_operator_account_secret"),
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_operator_account")),
    )
    op.create_table(
        "audit_entry",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("data", sa.String(), nullable=False),
        sa.Column("personal", sa.String(), nullable=True),
        sa.Column("personal_salt", sa.String(length=64), nullable=True),
        sa.Column("personal_digest", sa.String(length=64), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("erased_at", _ts(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_entry")),
    )
    op.create_index(op.f("ix_audit_entry_at"), "audit_entry", ["at"])
    op.create_table(
        "audit_subject",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["seq"],
            ["audit_entry.seq"],
            name=op.f("fk_audit_subject_audit_entry"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", "subject", name=op.f("pk_audit_subject")),
    )
    op.create_index(op.f("ix_audit_subject_subject_seq"), "audit_subject", ["subject", "seq"])
    op.create_table(
        "charge",
        _id_column(),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("credential", sa.String(length=10), nullable=False),
        sa.Column("employment_id", sa.String(length=64), nullable=True),
        sa.Column("amount_nok", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("operator", sa.String(), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=True),
        sa.CheckConstraint("amount_nok > 0", name=op.f("ck_charge_amount_nok")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charge")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_charge_at"), "charge", ["at"])
    op.create_index(op.f("ix_charge_credential"), "charge", ["credential"])
    op.create_table(
        "access_review",
        _id_column(),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("reviewer", sa.String(), nullable=False),
        sa.Column("credentials", sa.Integer(), nullable=False),
        sa.Column("removed", _json(), nullable=False),
        sa.Column("note", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_review")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_access_review_at"), "access_review", ["at"])


def downgrade() -> None:
    for index, table in (
        ("ix_access_review_at", "access_review"),
        ("ix_charge_credential", "charge"),
        ("ix_charge_at", "charge"),
        ("ix_audit_subject_subject_seq", "audit_subject"),
        ("ix_audit_entry_at", "audit_entry"),
    ):
        op.drop_index(op.f(index), table_name=table)
    for table in ("access_review", "charge", "audit_subject", "audit_entry", "operator_account"):
        op.drop_table(table)

"""Initial schema: facts, outbox, inbox and derived state.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-23

Written by hand; every constraint and index is named as the naming convention of
gateway/store/tables.py names it, so later revisions can alter them on either database. Names
are wrapped in op.f() ("final"), so that no naming convention rewrites them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_initial"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )


def _ident() -> sa.String:
    return sa.String(length=64)


def _org() -> sa.String:
    return sa.String(length=11)


def _enum() -> sa.String:
    return sa.String(length=20)


def _check_in(table: str, column: str, values: Sequence[str]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(f"ck_{table}_{column}"))


def _fk(
    table: str, columns: list[str], parent: str, parent_columns: list[str] | None = None
) -> sa.ForeignKeyConstraint:
    """A child row belongs to its parent row and goes with it."""
    return sa.ForeignKeyConstraint(
        columns,
        [f"{parent}.{c}" for c in parent_columns or columns],
        name=op.f(f"fk_{table}_{parent}"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    # ------------------------------------------------------------------ organisations
    op.create_table(
        "organisation",
        sa.Column("org_number", _org(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("org_number", name=op.f("pk_organisation")),
    )
    op.create_table(
        "key_grant_agreement",
        sa.Column("id", _ident(), nullable=False),
        sa.Column("org_number", _org(), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("terminated_at", _ts(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_grant_agreement")),
    )
    op.create_index(
        op.f("ix_key_grant_agreement_org_number"), "key_grant_agreement", ["org_number"]
    )

    # ------------------------------------------------------------------ people
    op.create_table(
        "person",
        sa.Column("id", _ident(), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("mobile", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
    )
    op.create_table(
        "employment",
        sa.Column("id", _ident(), nullable=False),
        sa.Column("person_id", _ident(), nullable=False),
        sa.Column("org_number", _org(), nullable=False),
        sa.Column("id06_card_number", sa.String(length=20), nullable=False),
        sa.Column("id06_valid_until", sa.Date(), nullable=False),
        sa.Column("id06_status", _enum(), nullable=False),
        _check_in("employment", "id06_status", ["active", "blocked", "terminated"]),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_employment")),
    )
    op.create_index(op.f("ix_employment_id06_card_number"), "employment", ["id06_card_number"])
    op.create_index(
        op.f("ix_employment_person_id_org_number"), "employment", ["person_id", "org_number"]
    )
    op.create_table(
        "competence",
        sa.Column("person_id", _ident(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "code", name=op.f("pk_competence")),
    )

    # ------------------------------------------------------------------ spaces
    op.create_table(
        "space",
        sa.Column("id", _ident(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("revalidation_days", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_space")),
    )
    op.create_table(
        "space_cylinder",
        sa.Column("space_id", _ident(), nullable=False),
        sa.Column("cylinder", sa.String(length=10), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _fk("space_cylinder", ["space_id"], "space", ["id"]),
        sa.PrimaryKeyConstraint("space_id", "cylinder", name=op.f("pk_space_cylinder")),
    )
    op.create_index(op.f("ix_space_cylinder_cylinder"), "space_cylinder", ["cylinder"])
    op.create_table(
        "space_door",
        sa.Column("space_id", _ident(), nullable=False),
        sa.Column("controller_id", _ident(), nullable=False),
        sa.Column("door", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _fk("space_door", ["space_id"], "space", ["id"]),
        sa.PrimaryKeyConstraint("space_id", "controller_id", "door", name=op.f("pk_space_door")),
    )
    op.create_index(op.f("ix_space_door_controller_id"), "space_door", ["controller_id"])
    op.create_table(
        "space_competence",
        sa.Column("space_id", _ident(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _fk("space_competence", ["space_id"], "space", ["id"]),
        sa.PrimaryKeyConstraint("space_id", "code", name=op.f("pk_space_competence")),
    )

    # ------------------------------------------------------------------ assignments
    op.create_table(
        "assignment",
        sa.Column("id", _ident(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("main_contractor", _org(), nullable=False),
        sa.Column("project_manager", sa.String(length=100), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignment")),
    )
    op.create_table(
        "access_application",
        sa.Column("assignment_id", _ident(), nullable=False),
        sa.Column("revision", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("status", _enum(), nullable=False),
        sa.Column("expedited", sa.Boolean(), nullable=False),
        sa.Column("submitted_at", _ts(), nullable=False),
        sa.Column("decided_at", _ts(), nullable=True),
        _check_in(
            "access_application", "status", ["submitted", "approved", "rejected", "withdrawn"]
        ),
        sa.PrimaryKeyConstraint("assignment_id", "revision", name=op.f("pk_access_application")),
    )
    op.create_index(
        op.f("ix_access_application_assignment_id_status_revision"),
        "access_application",
        ["assignment_id", "status", "revision"],
    )
    op.create_table(
        "application_entry",
        sa.Column("assignment_id", _ident(), nullable=False),
        sa.Column("revision", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("employment_id", _ident(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("schedule", _json(), nullable=True),
        _fk("application_entry", ["assignment_id", "revision"], "access_application"),
        sa.PrimaryKeyConstraint(
            "assignment_id", "revision", "employment_id", name=op.f("pk_application_entry")
        ),
    )
    op.create_index(
        op.f("ix_application_entry_employment_id"), "application_entry", ["employment_id"]
    )
    op.create_table(
        "application_entry_space",
        sa.Column("assignment_id", _ident(), nullable=False),
        sa.Column("revision", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("employment_id", _ident(), nullable=False),
        sa.Column("space_id", _ident(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _fk(
            "application_entry_space",
            ["assignment_id", "revision", "employment_id"],
            "application_entry",
        ),
        sa.PrimaryKeyConstraint(
            "assignment_id",
            "revision",
            "employment_id",
            "space_id",
            name=op.f("pk_application_entry_space"),
        ),
    )
    op.create_index(
        op.f("ix_application_entry_space_space_id"), "application_entry_space", ["space_id"]
    )

    # ------------------------------------------------------------------ credentials
    op.create_table(
        "credential",
        sa.Column("number", sa.String(length=10), nullable=False),
        sa.Column("kind", _enum(), nullable=False),
        sa.Column("state", _enum(), nullable=False),
        sa.Column("employment_id", _ident(), nullable=True),
        sa.Column("order_id", _ident(), nullable=True),
        sa.Column("replaced_by", sa.String(), nullable=True),
        sa.Column("hr_approved_at", _ts(), nullable=True),
        sa.Column("state_changed_at", _ts(), nullable=True),
        _check_in("credential", "kind", ["key", "tag", "visitor_card"]),
        _check_in(
            "credential",
            "state",
            [
                "delivered",
                "handed_out",
                "in_service",
                "returned",
                "lost",
                "broken",
                "destroyed",
                "replaced",
            ],
        ),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_credential")),
    )
    op.create_index(op.f("ix_credential_employment_id"), "credential", ["employment_id"])
    op.create_index(op.f("ix_credential_order_id"), "credential", ["order_id"])
    op.create_table(
        "key_order",
        sa.Column("id", _ident(), nullable=False),
        sa.Column("org_number", _org(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("delivery_address", sa.String(length=300), nullable=False),
        sa.Column("status", _enum(), nullable=False),
        sa.Column("ordered_at", _ts(), nullable=False),
        _check_in("key_order", "status", ["placed", "partly_delivered", "delivered", "cancelled"]),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_order")),
    )
    op.create_index(op.f("ix_key_order_org_number"), "key_order", ["org_number"])
    op.create_table(
        "delivery_manifest",
        sa.Column("order_id", _ident(), nullable=False),
        sa.Column("delivered_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "delivered_at", name=op.f("pk_delivery_manifest")),
    )
    op.create_table(
        "manifest_key",
        sa.Column("order_id", _ident(), nullable=False),
        sa.Column("delivered_at", _ts(), nullable=False),
        sa.Column("key_serial", sa.String(length=9), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _fk("manifest_key", ["order_id", "delivered_at"], "delivery_manifest"),
        sa.PrimaryKeyConstraint(
            "order_id", "delivered_at", "key_serial", name=op.f("pk_manifest_key")
        ),
    )
    op.create_index(op.f("ix_manifest_key_key_serial"), "manifest_key", ["key_serial"])
    op.create_table(
        "receipt",
        sa.Column("credential_number", sa.String(), nullable=False),
        sa.Column("employment_id", _ident(), nullable=False),
        sa.Column("produced_at", _ts(), nullable=False),
        sa.Column("signed_at", _ts(), nullable=True),
        sa.PrimaryKeyConstraint("credential_number", "employment_id", name=op.f("pk_receipt")),
    )
    op.create_index(op.f("ix_receipt_employment_id"), "receipt", ["employment_id"])
    op.create_table(
        "visitor_card",
        sa.Column("number", sa.String(length=10), nullable=False),
        sa.Column("holder_name", sa.String(length=200), nullable=False),
        sa.Column("company", sa.String(length=200), nullable=False),
        sa.Column("mobile", sa.String(length=16), nullable=False),
        sa.Column("sponsor_employment_id", _ident(), nullable=False),
        sa.Column("reason", _enum(), nullable=False),
        sa.Column("valid_from", _ts(), nullable=False),
        sa.Column("valid_until", _ts(), nullable=False),
        sa.Column("issued_at", _ts(), nullable=False),
        sa.Column("returned_at", _ts(), nullable=True),
        sa.Column("erased", sa.Boolean(), nullable=False),
        _check_in("visitor_card", "reason", ["forgot_card", "new_employee", "supplier"]),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_visitor_card")),
    )
    op.create_index(
        op.f("ix_visitor_card_sponsor_employment_id"), "visitor_card", ["sponsor_employment_id"]
    )
    op.create_index(op.f("ix_visitor_card_valid_until"), "visitor_card", ["valid_until"])
    op.create_table(
        "visitor_card_space",
        sa.Column("number", sa.String(length=10), nullable=False),
        sa.Column("space_id", _ident(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _fk("visitor_card_space", ["number"], "visitor_card"),
        sa.PrimaryKeyConstraint("number", "space_id", name=op.f("pk_visitor_card_space")),
    )
    op.create_index(op.f("ix_visitor_card_space_space_id"), "visitor_card_space", ["space_id"])

    # ------------------------------------------------------------------ messaging
    op.create_table(
        "inbox",
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("response", _json(), nullable=False),
        sa.Column("received_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_inbox")),
    )
    op.create_index(op.f("ix_inbox_received_at"), "inbox", ["received_at"])
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("qos", sa.SmallInteger(), nullable=False),
        sa.Column("retain", sa.Boolean(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("published_at", _ts(), nullable=True),
        sa.CheckConstraint("qos IN (0, 1, 2)", name=op.f("ck_outbox_qos")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_outbox_published_at_id"), "outbox", ["published_at", "id"])

    op.create_table(
        "fact_journal",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("key", _json(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_fact_journal")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_fact_journal_at"), "fact_journal", ["at"])

    # ------------------------------------------------------------------ derived state
    op.create_table(
        "credential_state",
        sa.Column("number", sa.String(length=10), nullable=False),
        sa.Column("kind", _enum(), nullable=False),
        sa.Column("revision", sa.String(length=128), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("body", _json(), nullable=False),
        sa.Column("computed_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_credential_state")),
    )
    op.create_table(
        "controller_state",
        sa.Column("controller_id", _ident(), nullable=False),
        sa.Column("revision", sa.String(length=128), nullable=False),
        sa.Column("body", _json(), nullable=False),
        sa.Column("computed_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("controller_id", name=op.f("pk_controller_state")),
    )
    op.create_table(
        "cylinder_blacklist",
        sa.Column("cylinder", sa.String(length=10), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("serials", _json(), nullable=False),
        sa.Column("revision", sa.String(length=128), nullable=False),
        sa.Column("computed_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("cylinder", name=op.f("pk_cylinder_blacklist")),
    )


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes.
    for table in (
        "cylinder_blacklist",
        "controller_state",
        "credential_state",
        "fact_journal",
        "outbox",
        "inbox",
        "visitor_card_space",
        "visitor_card",
        "receipt",
        "manifest_key",
        "delivery_manifest",
        "key_order",
        "credential",
        "application_entry_space",
        "application_entry",
        "access_application",
        "assignment",
        "space_competence",
        "space_door",
        "space_cylinder",
        "space",
        "competence",
        "employment",
        "person",
        "key_grant_agreement",
        "organisation",
    ):
        op.drop_table(table)

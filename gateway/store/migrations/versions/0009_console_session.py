"""Console sessions in the store, so that a restart of the core or a takeover by another core
instance keeps operators signed in: by the SHA-256 of the session id (never the id itself),
with the operator, the instants of sign-in and of last use, the CSRF token and the language.

Revision ID: 0009_console_session
Revises: 0008_site_report
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_console_session"
down_revision: str | Sequence[str] | None = "0008_site_report"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Sessions of a console before this revision lived in its process only: none to carry over.
    op.create_table(
        "console_session",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_console_session")),
    )
    op.create_index(
        op.f("ix_console_session_operator"), "console_session", ["operator"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_console_session_operator"), table_name="console_session")
    op.drop_table("console_session")

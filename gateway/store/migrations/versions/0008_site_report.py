"""Site reports: the agents' reports the site hub applied, by (site, the store id the report
was queued under, outbox sequence number), and per store id the number below which every
report was applied or replaced, so that a report delivered again after a restart of the core,
or sent again from a state file restored from a backup, is applied once.

Revision ID: 0008_site_report
Revises: 0007_lease_console_url
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_site_report"
down_revision: str | Sequence[str] | None = "0007_lease_console_url"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "site_report",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site", "store", "seq", name=op.f("pk_site_report")),
    )
    op.create_table(
        "site_report_floor",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=False),
        sa.Column("below", sa.BigInteger(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site", "store", name=op.f("pk_site_report_floor")),
    )


def downgrade() -> None:
    op.drop_table("site_report_floor")
    op.drop_table("site_report")

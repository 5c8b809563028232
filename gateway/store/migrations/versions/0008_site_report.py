"""Site reports: the agents' reports the site hub applied, by (site, the agent's state file,
outbox sequence number), so that a report delivered again after a restart of the core is
applied once.

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


def downgrade() -> None:
    op.drop_table("site_report")

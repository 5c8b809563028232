"""Site key visits: which keys visited a station of which site, so that the site hub answers a
site's agent with images only of keys that came to it.

Revision ID: 0006_site_key_visit
Revises: 0005_leader_lease
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_site_key_visit"
down_revision: str | Sequence[str] | None = "0005_leader_lease"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "site_key_visit",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("serial", sa.String(length=10), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site", "serial", name=op.f("pk_site_key_visit")),
    )


def downgrade() -> None:
    op.drop_table("site_key_visit")

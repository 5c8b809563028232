"""Leader lease: the leader's console URL, so that a standby's console can send people there.

Revision ID: 0007_lease_console_url
Revises: 0006_site_key_visit
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_lease_console_url"
down_revision: str | Sequence[str] | None = "0006_site_key_visit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Null for a lease taken before (and for a leader whose console has no known address):
    # a standby then names the leader without a link.
    with op.batch_alter_table("leader_lease") as batch:
        batch.add_column(sa.Column("console_url", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leader_lease") as batch:
        batch.drop_column("console_url")

"""Inbox: the digest of each recorded request, so that a request id reused for another
request is told apart from a replay.

Revision ID: 0004_inbox_digest
Revises: 0003_audit
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_inbox_digest"
down_revision: str | Sequence[str] | None = "0003_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Null for requests recorded before: those are compared by their request name only.
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("digest")

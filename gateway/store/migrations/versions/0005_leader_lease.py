"""Leader lease: which core instance leads, with a fencing token; on PostgreSQL the function
every write transaction of a leader calls to take the write lock and check its token.

Revision ID: 0005_leader_lease
Revises: 0004_inbox_digest
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_leader_lease"
down_revision: str | Sequence[str] | None = "0004_inbox_digest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Kept here as written at this revision (gateway.store.fencing holds the current text).
FENCED_WRITE_LOCK = """
CREATE OR REPLACE FUNCTION lockgate_fenced_write_lock(
    lock_key bigint, lease_name text, fence_token bigint
) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    held bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    -- A new statement: under READ COMMITTED it sees every commit made before the lock.
    SELECT token INTO held FROM leader_lease WHERE name = lease_name;
    IF held IS DISTINCT FROM fence_token THEN
        RAISE EXCEPTION USING
            ERRCODE = '57L01',
            MESSAGE = format(
                'fenced out: the %s lease has token %s, this writer holds %s',
                lease_name, coalesce(held::text, 'none'), fence_token
            );
    END IF;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "leader_lease",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leader_lease")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FENCED_WRITE_LOCK)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS lockgate_fenced_write_lock(bigint, text, bigint)")
    op.drop_table("leader_lease")

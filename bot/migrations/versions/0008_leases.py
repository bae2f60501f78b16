"""leases: which worker polls a feed and publishes for an account.

Several workers on one PostgreSQL database share the work through this table
(bot.leases): a row per (kind, name) names its holder and the time the lease
ends unless renewed. A lease whose holder stopped beating in ``workers`` is
taken over. SQLite has one worker (the instance lock); the same rows are kept.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("kind", sa.String(16), primary_key=True),     # "feed" or "account"
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False))
    op.create_index("leases_holder", "leases", ["holder"])


def downgrade() -> None:
    op.drop_index("leases_holder", table_name="leases")
    op.drop_table("leases")

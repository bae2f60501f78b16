"""workers: one heartbeat row per running Herald worker.

The service writes its row at start and on every heartbeat and removes it on a
clean shutdown, so ``status`` can say whether a service runs (and where, and
since when) from the database alone, on any host that shares it.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("worker", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("beat_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workers")

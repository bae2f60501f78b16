"""Retention: seen_keys, and the indexes pruning needs.

Settled posts and their stories are deleted after ``retention``; what dedupe
needs of them stays as a 16-byte digest per (feed, item id) and per story key,
so an old item that reappears in a feed is still never queued again.
``ix_outbox_status_updated`` finds settled rows by the time they settled
(``updated_at``); ``ix_items_article`` finds a story's items when it goes.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_keys",
        sa.Column("key", sa.LargeBinary(16), primary_key=True),
        sqlite_with_rowid=False,   # the key is the row: half the size on SQLite
    )
    op.create_index("ix_outbox_status_updated", "outbox", ["status", "updated_at"])
    op.create_index("ix_items_article", "items", ["article_id"])


def downgrade() -> None:
    op.drop_index("ix_items_article", "items")
    op.drop_index("ix_outbox_status_updated", "outbox")
    op.drop_table("seen_keys")

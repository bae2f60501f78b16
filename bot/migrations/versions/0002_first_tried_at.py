"""outbox.first_tried_at: when a post was first handed to its platform.

Set on the first claim and never cleared (not by a release, not by a manual
retry), so a lookup after a crash or a timeout knows how far back to search.
Rows tried before this migration get their article's first sight: no try can
be older than that, so it is a safe (if wide) lower bound.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("first_tried_at", sa.DateTime(timezone=True)))
    op.execute(
        "UPDATE outbox SET first_tried_at = (SELECT a.first_seen_at FROM articles a "
        "WHERE a.id = outbox.article_id) "
        "WHERE status <> 'pending' OR attempts > 0 OR last_error IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("first_tried_at")

"""Initial schema: feed state, articles, item ids, outbox, account state.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feed_state",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("configured_url", sa.Text, nullable=False),
        sa.Column("url", sa.Text),                     # remembered permanent redirect
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("primed_at", TS),                    # first sight done
        sa.Column("last_fetch_at", TS),
        sa.Column("last_success_at", TS),
        sa.Column("error_streak", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("next_poll_at", TS),
        sa.Column("gone_reason", sa.Text),
    )
    op.create_table(
        "articles",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("url_key", sa.Text, nullable=False, unique=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("feed", sa.String(200), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("lead", sa.Text, nullable=False, server_default=""),
        sa.Column("image", sa.Text),
        sa.Column("author", sa.Text),
        sa.Column("categories", sa.Text, nullable=False, server_default="[]"),
        sa.Column("published_at", TS),
        sa.Column("first_seen_at", TS, nullable=False),
    )
    op.create_table(
        "items",
        sa.Column("feed", sa.String(200), primary_key=True),
        sa.Column("item_id", sa.String(1000), primary_key=True),
        sa.Column("article_id", sa.Integer, sa.ForeignKey("articles.id"), nullable=False),
        sa.Column("first_seen_at", TS, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("article_id", sa.Integer, sa.ForeignKey("articles.id"), nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),   # pending sending sent failed skipped
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        sa.Column("queued_at", TS, nullable=False),
        sa.Column("not_before", TS),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("claimed_at", TS),
        sa.Column("claimed_by", sa.String(200)),
        sa.Column("sent_at", TS),
        sa.Column("platform_id", sa.String(200)),
        sa.Column("text", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("article_id", "account", name="uq_outbox_article_account"),
    )
    op.create_index("ix_outbox_account_status", "outbox", ["account", "status"])
    op.create_index("ix_outbox_account_sent", "outbox", ["account", "sent_at"])
    op.create_table(
        "account_state",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("paused_reason", sa.Text),
        sa.Column("paused_until", TS),                 # rate limit lifts
        sa.Column("auth_failed_fingerprint", sa.String(64)),
        sa.Column("updated_at", TS, nullable=False),
    )

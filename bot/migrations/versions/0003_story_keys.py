"""articles.url_key without the scheme and a leading ``www.``.

A site that moves to https, or gains ``www.``, republishes its stories with new
links (often with new guids too); keyed by the full URL they were posted again.
Keys are recomputed with the store's ``story_key``; when two stories already
recorded now share a key, the older keeps it and the other keeps its old key
(both were posted already; merging rows would rewrite history).

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from bot.store import db_key, story_key  # the same rule the store applies from now on

    conn = op.get_bind()
    articles = sa.table("articles", sa.column("id", sa.Integer), sa.column("url", sa.Text),
                        sa.column("url_key", sa.Text))
    rows = conn.execute(sa.select(articles.c.id, articles.c.url, articles.c.url_key)
                        .order_by(articles.c.id)).all()
    taken = {r.url_key for r in rows}
    for row in rows:
        key = db_key(story_key(row.url or ""))
        if key == row.url_key or key in taken or not row.url:
            continue
        conn.execute(articles.update().where(articles.c.id == row.id).values(url_key=key))
        taken.discard(row.url_key)
        taken.add(key)


def downgrade() -> None:
    # The old keys cannot be told back from the new ones; dedupe by the new
    # key stays correct for the old code too, only less strict.
    pass

"""feed_state keeps no feed URL token.

``configured_url`` held the feed's URL as configured, and ``url`` a remembered
permanent move with the feed's credentials; a token in either (userinfo, a
query value) sat in the database. From now on ``configured_url`` holds the
URL's digest (it only tells that the user changed the URL) and ``url`` the
move with the configured URL's secrets as placeholders (bot.secret.seal),
which the poller fills in from the configuration.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _table() -> sa.TableClause:
    return sa.table("feed_state", sa.column("name", sa.String), sa.column("configured_url", sa.Text),
                    sa.column("url", sa.Text))


def upgrade() -> None:
    from bot.schema import url_digest   # the rule the store applies from now on
    from bot.secret import seal

    conn, feeds = op.get_bind(), _table()
    for row in conn.execute(sa.select(feeds.c.name, feeds.c.configured_url, feeds.c.url)).all():
        if row.configured_url is None or row.configured_url.startswith("sha256:"):
            continue
        conn.execute(feeds.update().where(feeds.c.name == row.name).values(
            configured_url=url_digest(row.configured_url),
            url=row.url and seal(row.url, row.configured_url)))


def downgrade() -> None:
    # The URLs cannot be read back from their digests. An empty configured
    # URL makes the older code take each feed's URL as changed: it forgets
    # the remembered moves and validators and fetches each feed in full once
    # (nothing is posted again: the items are known).
    feeds = _table()
    op.get_bind().execute(feeds.update().values(configured_url="", url=None))

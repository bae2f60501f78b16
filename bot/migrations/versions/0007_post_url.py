"""outbox.post_url: the permalink of a sent post (the platform receipt's URL).

``status`` shows it beside the platform id, so a person can open the post.
Nullable: older rows, the console adapter and a duplicate found without a
lookup have none.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("post_url", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("post_url")

"""account_state.wait_reason: why an account waits until ``paused_until``.

A rate limit, X's monthly usage cap and the back-off after failed attempts all
make an account wait; ``status`` says which, and until when.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account_state") as batch:
        batch.add_column(sa.Column("wait_reason", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("account_state") as batch:
        batch.drop_column("wait_reason")

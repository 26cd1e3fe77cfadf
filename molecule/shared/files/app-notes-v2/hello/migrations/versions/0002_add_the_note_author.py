"""Add the note author.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Expand only: the column is nullable, so version 1, still serving on the hosts a rolling deploy has
not reached, goes on inserting notes without an author. Making it required would be a later
migration (contract), once no release that omits it serves any more.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    # ALTER TABLE ADD COLUMN on both SQLite and PostgreSQL: no table copy under a live app.
    op.add_column("notes", sa.Column("author", sa.String(length=64), nullable=True))


def downgrade():
    # SQLite before 3.35 (Debian 11) cannot drop a column: batch mode copies the table.
    with op.batch_alter_table("notes") as batch_op:
        batch_op.drop_column("author")

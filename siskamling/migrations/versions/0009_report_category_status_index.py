"""an index for queues filtered by category and status

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # "banjir reports still waiting": without it, every report of the category in the city is read.
    op.create_index('ix_report_category_status', 'report', ['category_id', 'status', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_report_category_status', table_name='report')

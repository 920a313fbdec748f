"""camera analytics events

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from siskamling.core.db import UTCDateTime

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('camera_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('camera_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('started_at', UTCDateTime(), nullable=False),
    sa.Column('ended_at', UTCDateTime(), nullable=True),
    sa.Column('score', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['camera.id'], name=op.f('fk_camera_event_camera_id_camera'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_camera_event'))
    )
    with op.batch_alter_table('camera_event', schema=None) as batch_op:
        batch_op.create_index('ix_camera_event_camera_started', ['camera_id', 'started_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('camera_event', schema=None) as batch_op:
        batch_op.drop_index('ix_camera_event_camera_started')
    op.drop_table('camera_event')

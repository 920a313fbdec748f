"""camera health and recordings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from siskamling.core.db import UTCDateTime

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('camera_health_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('camera_id', sa.Integer(), nullable=False),
    sa.Column('at', UTCDateTime(), nullable=False),
    sa.Column('health', sa.String(length=12), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['camera_id'], ['camera.id'], name=op.f('fk_camera_health_event_camera_id_camera'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_camera_health_event'))
    )
    with op.batch_alter_table('camera_health_event', schema=None) as batch_op:
        batch_op.create_index('ix_camera_health_event_camera_at', ['camera_id', 'at'], unique=False)

    op.create_table('recording_segment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('camera_id', sa.Integer(), nullable=False),
    sa.Column('started_at', UTCDateTime(), nullable=False),
    sa.Column('ended_at', UTCDateTime(), nullable=False),
    sa.Column('path', sa.String(length=500), nullable=False),
    sa.Column('bytes', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['camera.id'], name=op.f('fk_recording_segment_camera_id_camera'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recording_segment'))
    )
    with op.batch_alter_table('recording_segment', schema=None) as batch_op:
        batch_op.create_index('ix_recording_segment_camera_time', ['camera_id', 'started_at'], unique=False)

    with op.batch_alter_table('camera', schema=None) as batch_op:
        batch_op.add_column(sa.Column('health', sa.String(length=12), nullable=False, server_default='unknown'))
        batch_op.add_column(sa.Column('health_since', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('fps', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('bitrate_kbps', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('last_frame_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('codec', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('width', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('height', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('worker_id', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('lease_expires_at', UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_camera_worker_id'), ['worker_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('camera', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_camera_worker_id'))
        batch_op.drop_column('lease_expires_at')
        batch_op.drop_column('worker_id')
        batch_op.drop_column('height')
        batch_op.drop_column('width')
        batch_op.drop_column('codec')
        batch_op.drop_column('last_error')
        batch_op.drop_column('last_frame_at')
        batch_op.drop_column('bitrate_kbps')
        batch_op.drop_column('fps')
        batch_op.drop_column('health_since')
        batch_op.drop_column('health')

    with op.batch_alter_table('recording_segment', schema=None) as batch_op:
        batch_op.drop_index('ix_recording_segment_camera_time')

    op.drop_table('recording_segment')
    with op.batch_alter_table('camera_health_event', schema=None) as batch_op:
        batch_op.drop_index('ix_camera_health_event_camera_at')

    op.drop_table('camera_health_event')

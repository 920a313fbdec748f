"""cameras

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from siskamling.core.db import UTCDateTime

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('camera',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('area_path', sa.String(length=200), nullable=False),
    sa.Column('site_type', sa.String(length=20), nullable=False),
    sa.Column('owner', sa.String(length=20), nullable=False),
    sa.Column('stream_url', sa.String(length=1000), nullable=False),
    sa.Column('substream_url', sa.String(length=1000), nullable=True),
    sa.Column('credentials_enc', sa.String(length=1000), nullable=True),
    sa.Column('retention_days', sa.Integer(), nullable=False),
    sa.Column('share_level', sa.String(length=16), nullable=False),
    sa.Column('share_neighbours', sa.Boolean(), nullable=False),
    sa.Column('live_roles', sa.JSON(), nullable=False),
    sa.Column('recording_roles', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['area.id'], name=op.f('fk_camera_area_id_area'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_camera')),
    sa.UniqueConstraint('code', name=op.f('uq_camera_code'))
    )
    with op.batch_alter_table('camera', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_camera_area_path'), ['area_path'], unique=False)

    op.create_table('camera_share',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('camera_id', sa.Integer(), nullable=False),
    sa.Column('area_path', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('purpose', sa.String(length=12), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['camera.id'], name=op.f('fk_camera_share_camera_id_camera'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_camera_share'))
    )
    with op.batch_alter_table('camera_share', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_camera_share_camera_id'), ['camera_id'], unique=False)
        batch_op.create_index('ix_camera_share_lookup', ['purpose', 'role', 'area_path'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('camera_share', schema=None) as batch_op:
        batch_op.drop_index('ix_camera_share_lookup')
        batch_op.drop_index(batch_op.f('ix_camera_share_camera_id'))

    op.drop_table('camera_share')
    with op.batch_alter_table('camera', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_camera_area_path'))

    op.drop_table('camera')

"""evidence exports

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from siskamling.core.db import UTCDateTime

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('evidence_export',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('camera_id', sa.Integer(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('requested_by', sa.String(length=120), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('starts_at', UTCDateTime(), nullable=False),
    sa.Column('ends_at', UTCDateTime(), nullable=False),
    sa.Column('folder', sa.String(length=500), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['camera.id'], name=op.f('fk_evidence_export_camera_id_camera'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_export'))
    )
    with op.batch_alter_table('evidence_export', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_export_camera_id'), ['camera_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('evidence_export', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_export_camera_id'))

    op.drop_table('evidence_export')

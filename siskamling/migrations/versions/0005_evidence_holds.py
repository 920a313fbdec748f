"""evidence holds

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from siskamling.core.db import UTCDateTime

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('evidence_hold',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('camera_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', UTCDateTime(), nullable=False),
    sa.Column('ends_at', UTCDateTime(), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('placed_by', sa.String(length=120), nullable=False),
    sa.Column('placed_at', UTCDateTime(), nullable=False),
    sa.Column('released_at', UTCDateTime(), nullable=True),
    sa.Column('released_by', sa.String(length=120), nullable=True),
    sa.ForeignKeyConstraint(['camera_id'], ['camera.id'], name=op.f('fk_evidence_hold_camera_id_camera'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_hold'))
    )
    with op.batch_alter_table('evidence_hold', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_hold_camera_id'), ['camera_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('evidence_hold', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_hold_camera_id'))

    op.drop_table('evidence_hold')

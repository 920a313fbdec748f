"""camera requests, incidents and placement plans

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from siskamling.core.db import UTCDateTime

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('incident',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('source_ref', sa.String(length=60), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('occurred_at', UTCDateTime(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('area_path', sa.String(length=200).with_variant(sa.String(length=200, collation='C'), 'postgresql'), nullable=False),
    sa.Column('placed_by', sa.String(length=12), nullable=False),
    sa.Column('imported_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident')),
    sa.UniqueConstraint('source', 'source_ref', name=op.f('uq_incident_source'))
    )
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.create_index('ix_incident_lat_lon', ['lat', 'lon'], unique=False)
        batch_op.create_index('ix_incident_occurred', ['occurred_at'], unique=False)

    op.create_table('placement_plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('inputs', sa.JSON(), nullable=False),
    sa.Column('method', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('bound', sa.Float(), nullable=False),
    sa.Column('greedy_value', sa.Float(), nullable=False),
    sa.Column('total_weight', sa.Float(), nullable=False),
    sa.Column('already_covered', sa.Float(), nullable=False),
    sa.Column('demand', sa.JSON(), nullable=False),
    sa.Column('demand_points', sa.Integer(), nullable=False),
    sa.Column('candidates', sa.Integer(), nullable=False),
    sa.Column('cost', sa.Float(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('rerun_of_id', sa.Integer(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['rerun_of_id'], ['placement_plan.id'], name=op.f('fk_placement_plan_rerun_of_id_placement_plan'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_placement_plan'))
    )
    op.create_table('camera_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('area_path', sa.String(length=200).with_variant(sa.String(length=200, collation='C'), 'postgresql'), nullable=False),
    sa.Column('reason', sa.String(length=30), nullable=False),
    sa.Column('site_type', sa.String(length=30), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('hours', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('camera_id', sa.Integer(), nullable=True),
    sa.Column('requester_id', sa.Integer(), nullable=False),
    sa.Column('requester_role', sa.String(length=20), nullable=False),
    sa.Column('support_count', sa.Integer(), nullable=False),
    sa.Column('photo_count', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('score_parts', sa.JSON(), nullable=False),
    sa.Column('assessed_at', UTCDateTime(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['area.id'], name=op.f('fk_camera_request_area_id_area'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['camera_id'], ['camera.id'], name=op.f('fk_camera_request_camera_id_camera'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['requester_id'], ['user_account.id'], name=op.f('fk_camera_request_requester_id_user_account'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_camera_request')),
    sa.UniqueConstraint('code', name=op.f('uq_camera_request_code'))
    )
    with op.batch_alter_table('camera_request', schema=None) as batch_op:
        batch_op.create_index('ix_camera_request_area', ['area_path', 'created_at'], unique=False)
        batch_op.create_index('ix_camera_request_lat_lon', ['lat', 'lon'], unique=False)
        batch_op.create_index('ix_camera_request_requester', ['requester_id'], unique=False)
        batch_op.create_index('ix_camera_request_status', ['status', 'area_path'], unique=False)

    op.create_table('camera_request_photo',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=300), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['camera_request.id'], name=op.f('fk_camera_request_photo_request_id_camera_request'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_camera_request_photo')),
    sa.UniqueConstraint('request_id', 'number', name=op.f('uq_camera_request_photo_request_id'))
    )
    with op.batch_alter_table('camera_request_photo', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_camera_request_photo_request_id'), ['request_id'], unique=False)

    op.create_table('camera_request_step',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('at', UTCDateTime(), nullable=False),
    sa.Column('status_from', sa.String(length=12), nullable=True),
    sa.Column('status_to', sa.String(length=12), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_label', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user_account.id'], name=op.f('fk_camera_request_step_actor_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['request_id'], ['camera_request.id'], name=op.f('fk_camera_request_step_request_id_camera_request'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_camera_request_step'))
    )
    with op.batch_alter_table('camera_request_step', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_camera_request_step_request_id'), ['request_id'], unique=False)

    op.create_table('camera_request_support',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['camera_request.id'], name=op.f('fk_camera_request_support_request_id_camera_request'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_camera_request_support_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_camera_request_support')),
    sa.UniqueConstraint('request_id', 'user_id', name=op.f('uq_camera_request_support_request_id'))
    )
    op.create_table('placement_plan_site',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('area_path', sa.String(length=200).with_variant(sa.String(length=200, collation='C'), 'postgresql'), nullable=True),
    sa.Column('site_type', sa.String(length=30), nullable=False),
    sa.Column('cost', sa.Float(), nullable=False),
    sa.Column('gain', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['placement_plan.id'], name=op.f('fk_placement_plan_site_plan_id_placement_plan'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['request_id'], ['camera_request.id'], name=op.f('fk_placement_plan_site_request_id_camera_request'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_placement_plan_site'))
    )
    with op.batch_alter_table('placement_plan_site', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_placement_plan_site_plan_id'), ['plan_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('placement_plan_site', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_placement_plan_site_plan_id'))

    op.drop_table('placement_plan_site')
    op.drop_table('camera_request_support')
    with op.batch_alter_table('camera_request_step', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_camera_request_step_request_id'))

    op.drop_table('camera_request_step')
    with op.batch_alter_table('camera_request_photo', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_camera_request_photo_request_id'))

    op.drop_table('camera_request_photo')
    with op.batch_alter_table('camera_request', schema=None) as batch_op:
        batch_op.drop_index('ix_camera_request_status')
        batch_op.drop_index('ix_camera_request_requester')
        batch_op.drop_index('ix_camera_request_lat_lon')
        batch_op.drop_index('ix_camera_request_area')

    op.drop_table('camera_request')
    op.drop_table('placement_plan')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_occurred')
        batch_op.drop_index('ix_incident_lat_lon')

    op.drop_table('incident')

"""citizen reports

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from siskamling.core.db import UTCDateTime

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# Area paths compare as bytes on PostgreSQL, so "inside area X" is an index range scan.
PATH = sa.String(length=200).with_variant(sa.String(length=200, collation='C'), 'postgresql')


def upgrade() -> None:
    op.create_table('intake_client',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('key_prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('webhook_url', sa.String(length=500), nullable=True),
    sa.Column('webhook_secret_enc', sa.String(length=300), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('last_used_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intake_client')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_intake_client_key_hash')),
    sa.UniqueConstraint('name', name=op.f('uq_intake_client_name'))
    )
    op.create_table('report_unit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=60), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('area_path', PATH, nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_unit')),
    sa.UniqueConstraint('code', name=op.f('uq_report_unit_code'))
    )
    op.create_table('idempotency_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('request_sha256', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['intake_client.id'], name=op.f('fk_idempotency_record_client_id_intake_client'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_record')),
    sa.UniqueConstraint('client_id', 'key', name=op.f('uq_idempotency_record_client_id'))
    )
    op.create_table('report_category',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name_id', sa.String(length=120), nullable=False),
    sa.Column('name_en', sa.String(length=120), nullable=False),
    sa.Column('group', sa.String(length=60), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('keywords', sa.String(length=300), nullable=False),
    sa.Column('emergency', sa.Boolean(), nullable=False),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.Column('default_unit_id', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['default_unit_id'], ['report_unit.id'], name=op.f('fk_report_category_default_unit_id_report_unit'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_category')),
    sa.UniqueConstraint('code', name=op.f('uq_report_category_code'))
    )
    op.create_table('report_unit_member',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('is_head', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['report_unit.id'], name=op.f('fk_report_unit_member_unit_id_report_unit'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_report_unit_member_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_unit_member')),
    sa.UniqueConstraint('unit_id', 'user_id', name=op.f('uq_report_unit_member_unit_id'))
    )
    with op.batch_alter_table('report_unit_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_unit_member_user_id'), ['user_id'], unique=False)

    op.create_table('report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket', sa.String(length=20), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('area_path', PATH, nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('officer_id', sa.Integer(), nullable=True),
    sa.Column('duplicate_of_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=True),
    sa.Column('external_id', sa.String(length=100), nullable=True),
    sa.Column('reporter_id', sa.Integer(), nullable=True),
    sa.Column('reporter_name', sa.String(length=200), nullable=True),
    sa.Column('reporter_phone', sa.String(length=32), nullable=True),
    sa.Column('reporter_email', sa.String(length=254), nullable=True),
    sa.Column('anonymous', sa.Boolean(), nullable=False),
    sa.Column('confidential', sa.Boolean(), nullable=False),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('emergency', sa.Boolean(), nullable=False),
    sa.Column('media_url', sa.String(length=500), nullable=True),
    sa.Column('track_key_hash', sa.String(length=64), nullable=True),
    sa.Column('occurred_at', UTCDateTime(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('first_action_at', UTCDateTime(), nullable=True),
    sa.Column('first_action_by_id', sa.Integer(), nullable=True),
    sa.Column('resolved_at', UTCDateTime(), nullable=True),
    sa.Column('closed_at', UTCDateTime(), nullable=True),
    sa.Column('confirmed_at', UTCDateTime(), nullable=True),
    sa.Column('reopen_count', sa.Integer(), nullable=False),
    sa.Column('support_count', sa.Integer(), nullable=False),
    sa.Column('photo_count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['area.id'], name=op.f('fk_report_area_id_area'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['category_id'], ['report_category.id'], name=op.f('fk_report_category_id_report_category'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['client_id'], ['intake_client.id'], name=op.f('fk_report_client_id_intake_client'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['duplicate_of_id'], ['report.id'], name=op.f('fk_report_duplicate_of_id_report'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['first_action_by_id'], ['user_account.id'], name=op.f('fk_report_first_action_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['officer_id'], ['user_account.id'], name=op.f('fk_report_officer_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reporter_id'], ['user_account.id'], name=op.f('fk_report_reporter_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['unit_id'], ['report_unit.id'], name=op.f('fk_report_unit_id_report_unit'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report')),
    sa.UniqueConstraint('client_id', 'external_id', name=op.f('uq_report_client_id')),
    sa.UniqueConstraint('ticket', name=op.f('uq_report_ticket'))
    )
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.create_index('ix_report_area_created', ['area_path', 'created_at'], unique=False)
        batch_op.create_index('ix_report_category_created', ['category_id', 'created_at'], unique=False)
        batch_op.create_index('ix_report_created', ['created_at'], unique=False)
        batch_op.create_index('ix_report_lat_lon', ['lat', 'lon'], unique=False)
        batch_op.create_index('ix_report_officer_status', ['officer_id', 'status'], unique=False)
        batch_op.create_index('ix_report_reporter', ['reporter_id'], unique=False)
        batch_op.create_index('ix_report_status_area', ['status', 'area_path', 'created_at'], unique=False)
        batch_op.create_index('ix_report_unit_status', ['unit_id', 'status', 'created_at'], unique=False)
        batch_op.create_index('ix_report_updated', ['updated_at'], unique=False)

    op.create_table('report_routing_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=True),
    sa.Column('area_path', PATH, nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['report_category.id'], name=op.f('fk_report_routing_rule_category_id_report_category'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['unit_id'], ['report_unit.id'], name=op.f('fk_report_routing_rule_unit_id_report_unit'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_routing_rule')),
    sa.UniqueConstraint('category_id', 'area_path', name=op.f('uq_report_routing_rule_category_id'))
    )
    op.create_table('report_footage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('camera_id', sa.Integer(), nullable=False),
    sa.Column('hold_id', sa.Integer(), nullable=False),
    sa.Column('distance_m', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['camera.id'], name=op.f('fk_report_footage_camera_id_camera'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['hold_id'], ['evidence_hold.id'], name=op.f('fk_report_footage_hold_id_evidence_hold'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['report_id'], ['report.id'], name=op.f('fk_report_footage_report_id_report'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_footage'))
    )
    with op.batch_alter_table('report_footage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_footage_report_id'), ['report_id'], unique=False)

    op.create_table('report_step',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('at', UTCDateTime(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status_from', sa.String(length=12), nullable=True),
    sa.Column('status_to', sa.String(length=12), nullable=True),
    sa.Column('unit_from_id', sa.Integer(), nullable=True),
    sa.Column('unit_to_id', sa.Integer(), nullable=True),
    sa.Column('officer_id', sa.Integer(), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_label', sa.String(length=120), nullable=False),
    sa.Column('by_staff', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user_account.id'], name=op.f('fk_report_step_actor_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['officer_id'], ['user_account.id'], name=op.f('fk_report_step_officer_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['report_id'], ['report.id'], name=op.f('fk_report_step_report_id_report'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['unit_from_id'], ['report_unit.id'], name=op.f('fk_report_step_unit_from_id_report_unit'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['unit_to_id'], ['report_unit.id'], name=op.f('fk_report_step_unit_to_id_report_unit'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_step'))
    )
    with op.batch_alter_table('report_step', schema=None) as batch_op:
        batch_op.create_index('ix_report_step_at', ['at'], unique=False)
        batch_op.create_index('ix_report_step_report_at', ['report_id', 'at'], unique=False)

    op.create_table('report_support',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('supporter', sa.String(length=80), nullable=False),
    sa.Column('at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['report.id'], name=op.f('fk_report_support_report_id_report'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_support')),
    sa.UniqueConstraint('report_id', 'supporter', name=op.f('uq_report_support_report_id'))
    )
    op.create_table('report_view',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('first_at', UTCDateTime(), nullable=False),
    sa.Column('last_at', UTCDateTime(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['report.id'], name=op.f('fk_report_view_report_id_report'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_report_view_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_view')),
    sa.UniqueConstraint('report_id', 'user_id', name=op.f('uq_report_view_report_id'))
    )
    op.create_table('webhook_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', UTCDateTime(), nullable=False),
    sa.Column('claimed_until', UTCDateTime(), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('delivered_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['intake_client.id'], name=op.f('fk_webhook_delivery_client_id_intake_client'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['report_id'], ['report.id'], name=op.f('fk_webhook_delivery_report_id_report'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_delivery'))
    )
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_delivery_due', ['state', 'next_attempt_at'], unique=False)

    op.create_table('report_photo',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('step_id', sa.Integer(), nullable=True),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=300), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['report.id'], name=op.f('fk_report_photo_report_id_report'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['step_id'], ['report_step.id'], name=op.f('fk_report_photo_step_id_report_step'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_photo')),
    sa.UniqueConstraint('report_id', 'number', name=op.f('uq_report_photo_report_id'))
    )
    with op.batch_alter_table('report_photo', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_photo_report_id'), ['report_id'], unique=False)


    _seed_categories()


def _seed_categories() -> None:
    """A fresh deployment starts with Jakarta's usual categories; admins change them later."""
    from siskamling.reports.catalogue import DEFAULT_CATEGORIES, validate_attribute_defs

    table = sa.table('report_category', sa.column('code'), sa.column('name_id'), sa.column('name_en'),
                     sa.column('group'), sa.column('description'), sa.column('keywords'), sa.column('emergency'),
                     sa.column('attributes', sa.JSON()), sa.column('active'), sa.column('sort_order'),
                     sa.column('updated_at', UTCDateTime()))
    from siskamling.core.time import utcnow

    op.bulk_insert(table, [{
        'code': c['code'], 'name_id': c['name_id'], 'name_en': c['name_en'], 'group': c['group'],
        'description': '', 'keywords': c.get('keywords', ''), 'emergency': c.get('emergency', False),
        'attributes': validate_attribute_defs(c.get('attributes', [])), 'active': True, 'sort_order': n,
        'updated_at': utcnow(),
    } for n, c in enumerate(DEFAULT_CATEGORIES)])


def downgrade() -> None:
    with op.batch_alter_table('report_photo', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_photo_report_id'))

    op.drop_table('report_photo')
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_delivery_due')

    op.drop_table('webhook_delivery')
    op.drop_table('report_view')
    op.drop_table('report_support')
    with op.batch_alter_table('report_step', schema=None) as batch_op:
        batch_op.drop_index('ix_report_step_report_at')
        batch_op.drop_index('ix_report_step_at')

    op.drop_table('report_step')
    with op.batch_alter_table('report_footage', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_footage_report_id'))

    op.drop_table('report_footage')
    op.drop_table('report_routing_rule')
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.drop_index('ix_report_updated')
        batch_op.drop_index('ix_report_unit_status')
        batch_op.drop_index('ix_report_status_area')
        batch_op.drop_index('ix_report_reporter')
        batch_op.drop_index('ix_report_officer_status')
        batch_op.drop_index('ix_report_lat_lon')
        batch_op.drop_index('ix_report_created')
        batch_op.drop_index('ix_report_category_created')
        batch_op.drop_index('ix_report_area_created')

    op.drop_table('report')
    with op.batch_alter_table('report_unit_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_unit_member_user_id'))

    op.drop_table('report_unit_member')
    op.drop_table('report_category')
    op.drop_table('idempotency_record')
    op.drop_table('report_unit')
    op.drop_table('intake_client')

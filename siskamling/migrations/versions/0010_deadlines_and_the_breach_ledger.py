"""deadlines and the breach ledger

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from siskamling.core.db import UTCDateTime

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sla_day_off',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_day_off')),
    sa.UniqueConstraint('day', name=op.f('uq_sla_day_off_day'))
    )
    op.create_table('sla_policy',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('pause_statuses', sa.JSON(), nullable=False),
    sa.Column('handover', sa.String(length=10), nullable=False),
    sa.Column('reminder_days', sa.JSON(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_policy')),
    sa.UniqueConstraint('version', name=op.f('uq_sla_policy_version'))
    )
    op.create_table('sla_deadline',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('policy_version', sa.Integer(), nullable=False),
    sa.Column('days', sa.Double(), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('started_at', UTCDateTime(), nullable=False),
    sa.Column('due_at', UTCDateTime(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('met_at', UTCDateTime(), nullable=True),
    sa.Column('breached_at', UTCDateTime(), nullable=True),
    sa.Column('reminders_sent', sa.Integer(), nullable=False),
    sa.Column('next_check_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['report_id'], ['report.id'], name=op.f('fk_sla_deadline_report_id_report'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_deadline')),
    sa.UniqueConstraint('report_id', 'kind', name=op.f('uq_sla_deadline_report_id'))
    )
    with op.batch_alter_table('sla_deadline', schema=None) as batch_op:
        batch_op.create_index('ix_sla_deadline_state_next', ['state', 'next_check_at'], unique=False)

    op.create_table('sla_breach',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deadline_id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('officer_id', sa.Integer(), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('policy_version', sa.Integer(), nullable=False),
    sa.Column('due_at', UTCDateTime(), nullable=False),
    sa.Column('breached_at', UTCDateTime(), nullable=False),
    sa.Column('recorded_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['deadline_id'], ['sla_deadline.id'], name=op.f('fk_sla_breach_deadline_id_sla_deadline'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['officer_id'], ['user_account.id'], name=op.f('fk_sla_breach_officer_id_user_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['report_id'], ['report.id'], name=op.f('fk_sla_breach_report_id_report'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['unit_id'], ['report_unit.id'], name=op.f('fk_sla_breach_unit_id_report_unit'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_breach')),
    sa.UniqueConstraint('deadline_id', name=op.f('uq_sla_breach_deadline_id'))
    )
    with op.batch_alter_table('sla_breach', schema=None) as batch_op:
        batch_op.create_index('ix_sla_breach_breached_at', ['breached_at'], unique=False)
        batch_op.create_index('ix_sla_breach_officer', ['officer_id'], unique=False)

    # Version 1 of the policy: first action within 6 calendar days of the report, for every
    # category; reminders on day 3 and day 5; a handover does not stop the clock.
    policy = sa.table('sla_policy', sa.column('version', sa.Integer), sa.column('rules', sa.JSON),
                      sa.column('pause_statuses', sa.JSON), sa.column('handover', sa.String),
                      sa.column('reminder_days', sa.JSON), sa.column('note', sa.Text),
                      sa.column('created_at', UTCDateTime()), sa.column('created_by', sa.String))
    from datetime import UTC, datetime
    op.bulk_insert(policy, [{
        'version': 1, 'rules': [{'category': None, 'group': None, 'first_action': {'days': 6, 'mode': 'calendar_days'},
                                 'resolution': None}],
        'pause_statuses': [], 'handover': 'continue', 'reminder_days': [3, 5], 'note': 'default',
        'created_at': datetime.now(UTC), 'created_by': 'system',
    }])
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_TRIGGERS, "postgresql": POSTGRES_TRIGGERS}.get(dialect, []):
        op.execute(statement)


# The ledger is append-only: an appeal voids an entry elsewhere, the entry itself stays.
SQLITE_TRIGGERS = [
    """CREATE TRIGGER sla_breach_no_update BEFORE UPDATE ON sla_breach
       BEGIN SELECT RAISE(ABORT, 'sla_breach is append-only'); END""",
    """CREATE TRIGGER sla_breach_no_delete BEFORE DELETE ON sla_breach
       BEGIN SELECT RAISE(ABORT, 'sla_breach is append-only'); END""",
]
POSTGRES_TRIGGERS = [
    """CREATE FUNCTION sla_breach_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'sla_breach is append-only'; END $$""",
    """CREATE TRIGGER sla_breach_no_change BEFORE UPDATE OR DELETE ON sla_breach
       FOR EACH ROW EXECUTE FUNCTION sla_breach_append_only()""",
]



def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS sla_breach_no_change ON sla_breach")
        op.execute("DROP FUNCTION IF EXISTS sla_breach_append_only()")
    with op.batch_alter_table('sla_breach', schema=None) as batch_op:
        batch_op.drop_index('ix_sla_breach_officer')
        batch_op.drop_index('ix_sla_breach_breached_at')

    op.drop_table('sla_breach')
    with op.batch_alter_table('sla_deadline', schema=None) as batch_op:
        batch_op.drop_index('ix_sla_deadline_state_next')

    op.drop_table('sla_deadline')
    op.drop_table('sla_policy')
    op.drop_table('sla_day_off')

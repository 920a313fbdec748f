"""appeals and the TKD rule

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from siskamling.core.db import UTCDateTime

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sla_appeal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('breach_id', sa.Integer(), nullable=False),
    sa.Column('by_id', sa.Integer(), nullable=False),
    sa.Column('grounds', sa.String(length=30), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('attachment_path', sa.String(length=300), nullable=True),
    sa.Column('attachment_name', sa.String(length=200), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', UTCDateTime(), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['breach_id'], ['sla_breach.id'], name=op.f('fk_sla_appeal_breach_id_sla_breach'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['by_id'], ['user_account.id'], name=op.f('fk_sla_appeal_by_id_user_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user_account.id'], name=op.f('fk_sla_appeal_decided_by_id_user_account'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_appeal')),
    sa.UniqueConstraint('breach_id', name=op.f('uq_sla_appeal_breach_id'))
    )
    # Every policy so far gets the default TKD rule: 2.5 % per first-action breach, at most 10 % a
    # month (a setting with a sensible default; Jakarta's rules do not publish theirs).
    with op.batch_alter_table('sla_policy', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tkd', sa.JSON(), nullable=False, server_default=sa.text(
            "'{\"mode\": \"per_breach\", \"percent\": 2.5, \"cap\": 10, \"kinds\": [\"first_action\"]}'")))
    with op.batch_alter_table('sla_policy', schema=None) as batch_op:
        batch_op.alter_column('tkd', server_default=None)



def downgrade() -> None:
    with op.batch_alter_table('sla_policy', schema=None) as batch_op:
        batch_op.drop_column('tkd')

    op.drop_table('sla_appeal')

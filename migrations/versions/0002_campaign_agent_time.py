"""Agent time per campaign, dialer and hour: the stored figures behind agent occupancy.

Why a table of hour buckets rather than two running totals on ``dialer_campaigns``:
occupancy can then be reported per period (a shift, the last hour), and two dialers that
poll the same Asterisk queue can be counted once hour by hour (the report takes the larger
of their figures per hour and Asterisk box) instead of once over the whole campaign, which
would lose one dialer's hours whenever the two did not run side by side.

Only a new table: nothing is altered, so SQLite needs no batch (copy-table) operations and
the downgrade is a plain DROP TABLE.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "campaign_agent_time",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("dialer_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(), nullable=False),
        sa.Column("busy_agent_seconds", sa.Float(), nullable=False),
        sa.Column("logged_agent_seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_campaign_agent_time_campaign_id_campaigns"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["dialer_id"], ["dialers.id"],
                                name=op.f("fk_campaign_agent_time_dialer_id_dialers"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("campaign_id", "dialer_id", "hour", name=op.f("pk_campaign_agent_time")),
    )


def downgrade() -> None:
    op.drop_table("campaign_agent_time")

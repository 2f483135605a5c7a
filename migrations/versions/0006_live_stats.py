"""What running originators publish with their heartbeat, for `dialer top`, `dialer status` and the
metrics (agi.live): ``dialer_live`` (AMI session, lines in use, FastAGI address, graceful stop) and
``campaign_live`` (per dialer and campaign: state and why, pacing, lines, calls by stage, agents by
state). Two new tables; nothing else changes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "dialer_live",
        sa.Column("dialer_id", sa.Integer(), nullable=False),
        sa.Column("ami_connected", sa.Boolean(), nullable=False),
        sa.Column("ami_reconnects", sa.Integer(), nullable=False),
        sa.Column("lines_in_use", sa.Integer(), nullable=False),
        sa.Column("agi_address", sa.String(length=200), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["dialer_id"], ["dialers.id"], name=op.f("fk_dialer_live_dialer_id_dialers"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dialer_id", name=op.f("pk_dialer_live")),
    )
    op.create_table(
        "campaign_live",
        sa.Column("dialer_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("dial_level", sa.Float(), nullable=True),
        sa.Column("calls_to_start", sa.Integer(), nullable=True),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in (
            "lines_in_use", "lines_allowed", "ringing", "detecting", "in_ivr", "waiting", "agents_logged_in",
            "agents_ready", "agents_in_call", "agents_acw", "agents_paused")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_campaign_live_campaign_id_campaigns"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["dialer_id"], ["dialers.id"], name=op.f("fk_campaign_live_dialer_id_dialers"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dialer_id", "campaign_id", name=op.f("pk_campaign_live")),
    )


def downgrade() -> None:
    op.drop_table("campaign_live")
    op.drop_table("dialer_live")
